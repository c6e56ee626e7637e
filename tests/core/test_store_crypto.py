"""The store's keyed hashes and time text: the fast forms give exactly what the standard
library's plain forms give (stored indexes and tags written before must still match)."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.store.crypto import SecretBox, _derive
from gateway.store.timefmt import from_db, to_db


def _plain_tag(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big") + part)
    return mac.digest()[:8]


@pytest.mark.parametrize(
    "parts",
    [(), (b"",), (b"m1", b"code", b"1234", b"", b""), (os.urandom(200), b"x"), (b"\0" * 64,)],
)
def test_tag_is_the_hmac_of_the_length_prefixed_parts(parts: tuple[bytes, ...]) -> None:
    master = os.urandom(32)
    box = SecretBox(master)
    assert box.tag(*parts) == _plain_tag(_derive(master, b"lockgate content tag v1"), *parts)


def test_tags_tell_apart_part_lists_with_the_same_concatenation() -> None:
    box = SecretBox(os.urandom(32))
    assert box.tag(b"ab", b"c") != box.tag(b"a", b"bc")
    assert box.tag(b"ab", b"c") == box.tag(b"ab", b"c")


def test_index_is_the_hmac_of_kind_and_secret() -> None:
    master = os.urandom(32)
    box = SecretBox(master)
    key = _derive(master, b"lockgate secret index v1")
    for kind, secret in [("code", b"1234"), ("card", b""), ("mobile_key", os.urandom(90))]:
        want = hmac.new(key, kind.encode() + b"\0" + secret, hashlib.sha256).digest()
        assert box.index(kind, secret) == want
    assert box.index("code", b"1234") != box.index("card", b"1234")


def test_another_master_key_gives_other_tags_and_indexes() -> None:
    a, b = SecretBox(os.urandom(32)), SecretBox(os.urandom(32))
    assert a.tag(b"m1") != b.tag(b"m1")
    assert a.index("code", b"1234") != b.index("code", b"1234")


@pytest.mark.parametrize(
    "t",
    [
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_time_text_is_the_strftime_form(t: datetime) -> None:
    assert to_db(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if t.year >= 1000:
        assert from_db(to_db(t)) == t
