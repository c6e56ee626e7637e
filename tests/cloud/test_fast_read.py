"""The fast reading of grants and access methods (msgspec) gives exactly the records and
problems of the pydantic models, or leaves the object to them: never another answer."""

from __future__ import annotations

import random
from datetime import UTC
from typing import Any

import pytest

from gateway.cloud.models import (
    parse_grant,
    parse_grant_checked,
    parse_method,
    parse_method_checked,
)
from gateway.cloud.typed import fast_grant, fast_method

KEY = "A" * 43 + "="  # base64 of 32 bytes
GRANT: dict[str, Any] = {
    "access_grant_id": "g1",
    "workspace_id": "w1",
    "user_identity_id": "u1",
    "space_ids": ["s1"],
    "access_method_ids": ["m1"],
    "starts_at": "2026-03-01T12:00:00.000Z",
    "ends_at": "2026-03-02T12:00:00.000Z",
    "display_name": "Front desk",
    "requested_access_methods": [{"mode": "code", "code": "1234"}],
    "errors": [],
    "warnings": [{"warning_code": "being_deleted", "message": "going"}],
    "pending_mutations": [],
}
METHOD: dict[str, Any] = {
    "access_method_id": "m1",
    "mode": "code",
    "display_name": "PIN",
    "code": "1234",
    "is_issued": True,
    "issued_at": "2026-03-01T12:00:00.000Z",
    "errors": [],
    "warnings": [],
    "pending_mutations": [{"mutation_code": "updating", "message": "soon"}],
}

GRANT_VARIANTS: list[dict[str, Any]] = [
    {},
    {"starts_at": None, "ends_at": None},
    {"starts_at": "2026-03-01T12:00:00+05:30"},
    {"starts_at": "2026-03-01T12:00:00.1234567Z"},  # pydantic cuts, msgspec would round
    {"starts_at": "2026-03-01T12:00:00.9999995Z"},
    {"starts_at": "2026-03-01t12:00:00z"},
    {"starts_at": "2026-03-01 12:00:00Z"},
    {"starts_at": "2026-03-01T12:00:00"},  # no zone: refused
    {"starts_at": "2026-03-01"},
    {"starts_at": 1772366400},
    {"starts_at": "2026-03-01T12:00:00+01:75"},
    {"starts_at": "2026-02-30T12:00:00Z"},
    {"ends_at": "2026-03-01T11:00:00Z"},  # before the start
    {"access_grant_id": ""},
    {"access_grant_id": 7},
    {"space_ids": ["s1", 2]},
    {"space_ids": None},
    {"display_name": None},
    {"user_identity_id": None},
    {"acs_entrance_ids": ["e1", "e1"], "device_ids": ["d1"]},
    {"errors": [{"error_code": "failed", "message": "x" * 500}, "junk", {"message": "no code"}]},
    {"warnings": None},
]
METHOD_VARIANTS: list[dict[str, Any]] = [
    {},
    {"is_issued": False, "code": None},
    {"is_issued": "true"},  # lax in pydantic: left to it
    {"is_issued": 1},
    {"is_issued": None},
    {"code": ""},
    {"code": 1234},
    {"mode": "card", "code": None, "card_number": "99887766"},
    {"mode": "card", "code": None},
    {"mode": "mobile_key", "code": None, "mobile_key": {"public_key": KEY}},
    {"mode": "mobile_key", "code": None, "mobile_key": {"public_key": KEY.replace("=", "")}},
    {"mode": "mobile_key", "code": None, "mobile_key": {"public_key": "-_" * 21 + "AA"}},
    {"mode": "mobile_key", "code": None, "mobile_key": {"public_key": "not base64!"}},
    {"mode": "mobile_key", "code": None, "mobile_key": {"public_key": "AAAA"}},
    {"mode": "mobile_key", "code": None, "mobile_key": {}},
    {"mode": "mobile_key", "code": None, "mobile_key": None},
    {"mode": "cloud_key", "code": None},
    {"mode": 3},
    {"access_method_id": ""},
    {"display_name": None},
    {"errors": "nope"},
]


@pytest.mark.parametrize("change", GRANT_VARIANTS)
def test_grants_read_fast_are_the_grants_pydantic_reads(change: dict[str, Any]) -> None:
    raw = GRANT | change
    assert parse_grant(raw) == parse_grant_checked(raw)


@pytest.mark.parametrize("change", METHOD_VARIANTS)
def test_methods_read_fast_are_the_methods_pydantic_reads(change: dict[str, Any]) -> None:
    raw = METHOD | change
    assert parse_method(raw, "g1") == parse_method_checked(raw, "g1")


@pytest.mark.parametrize("raw", [None, [], "g1", 5])
def test_what_is_not_an_object_is_refused_as_before(raw: Any) -> None:
    assert parse_grant(raw) == parse_grant_checked(raw)
    assert parse_method(raw, None) == parse_method_checked(raw, None)


def test_seams_usual_objects_take_the_fast_way_with_the_standard_utc_zone() -> None:
    assert fast_grant(GRANT) is not None and fast_method(METHOD) is not None
    grant, problem = parse_grant(GRANT)
    assert grant is not None and problem is None
    assert grant.starts_at is not None and grant.starts_at.tzinfo is UTC
    assert grant.ends_at is not None and grant.ends_at.tzinfo is UTC
    assert grant.seam_notes[0].code == "being_deleted"
    method, _ = parse_method(METHOD, "g1")
    assert method is not None and method.secret == b"1234"


def _digits(rng: random.Random, n: int, top: int = 9) -> str:
    return "".join(str(rng.randint(0, top)) for _ in range(n))


def test_random_timestamps_read_the_same_both_ways() -> None:
    """Out-of-range fields too (month 19, minute 67, offset +23:69): where the fast reading
    takes a timestamp, it is the one pydantic reads; where pydantic refuses, so does it."""
    rng = random.Random(15)
    for _ in range(3000):
        text = (
            f"{_digits(rng, 4)}-{_digits(rng, 1, 1)}{_digits(rng, 1)}-{_digits(rng, 1, 3)}"
            f"{_digits(rng, 1)}T{_digits(rng, 1, 2)}{_digits(rng, 1)}:{_digits(rng, 1, 6)}"
            f"{_digits(rng, 1)}:{_digits(rng, 1, 6)}{_digits(rng, 1)}"
        )
        if rng.random() < 0.5:
            text += "." + _digits(rng, rng.randint(1, 9))
        hours, minutes = _digits(rng, 1, 2) + _digits(rng, 1), _digits(rng, 1, 6) + _digits(rng, 1)
        text += rng.choice(["Z", f"{rng.choice('+-')}{hours}:{minutes}"])
        raw = GRANT | {"starts_at": text, "ends_at": None}
        fast, checked = parse_grant(raw), parse_grant_checked(raw)
        assert fast == checked, text
        if fast[0] is not None and fast[0].starts_at is not None:
            assert fast[0].starts_at.utcoffset() == checked[0].starts_at.utcoffset()  # type: ignore[union-attr]
