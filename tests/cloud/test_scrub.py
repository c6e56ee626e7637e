"""The sync's fast scrubbing of raw objects (:func:`scrubbed`: secret fields deleted where Seam
puts them, the encoding checked for any left) stores exactly what the whole walk
(:func:`raw_without_secrets`) stores, whatever the object and however its keys are written."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cloud.models import SECRET_FIELDS, raw_without_secrets, scrubbed

KEYS = [
    *sorted(SECRET_FIELDS),
    "requested_access_methods",
    "barcode",  # the name of a secret field inside another key: not a secret field
    "codes",
    "code_hint",
    "my_card_number",
    'x"code',  # encoded as "x\"code": ends with the text of a secret key
    "mobile_keys",
    "Code",
    "extra",
    "a",
]


def _secret_keys_in(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        found = [k for k in obj if k in SECRET_FIELDS]
        return found + [k for v in obj.values() for k in _secret_keys_in(v)]
    if isinstance(obj, list):
        return [k for v in obj for k in _secret_keys_in(v)]
    return []


def _same_as_the_walk(obj: dict[str, Any]) -> str:
    expected = raw_without_secrets(obj)
    text = scrubbed(copy.deepcopy(obj))
    assert text == expected
    assert _secret_keys_in(json.loads(text)) == []
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
def test_any_object_is_stored_as_the_whole_walk_stores_it(obj: dict[str, Any]) -> None:
    _same_as_the_walk(obj)


def test_a_secret_nested_in_an_unknown_field_is_removed() -> None:
    obj = {
        "access_method_id": "m1",
        "extra": {"deeper": [{"code": "48151623"}, {"mobile_key": {"public_key": "k"}}]},
        "requested_access_methods": [{"mode": "card", "x": {"card_number": "90001"}}],
    }
    text = _same_as_the_walk(obj)
    for secret in ("48151623", "public_key", "90001"):
        assert secret not in text


def test_keys_that_only_contain_a_secret_fields_name_are_kept() -> None:
    obj = {"barcode": "1", "codes": [2], "my_card_number": 3, 'x"code': 4, "Code": 5, "code": "6"}
    text = _same_as_the_walk(obj)
    kept = {"barcode": "1", "codes": [2], "my_card_number": 3, 'x"code': 4, "Code": 5}
    assert json.loads(text) == kept


def test_secret_keys_written_with_unicode_escapes_are_removed() -> None:
    """The object as decoded from text whose keys are escaped (``"\\u0063ode"``): the check
    is on the encoder's output, which writes the decoded key plainly."""
    text = (
        b'{"access_grant_id": "g1", "\\u0063ode": "111111", "instant_key_\\u0075rl": "https://k",'
        b' "requested_access_methods": [{"mode": "code", "\\u0063\\u006fde": "222222"}],'
        b' "extra": {"list": [{"card_\\u006eumber": "333333"}], "\\u006dobile_key": {"a": 1}}}'
    )
    obj = msgspec.json.decode(text)
    stored = _same_as_the_walk(obj)
    for secret in ("111111", "https://k", "222222", "333333", '"a"'):
        assert secret not in stored
    assert json.loads(stored) == {
        "access_grant_id": "g1",
        "requested_access_methods": [{"mode": "code"}],
        "extra": {"list": [{}]},
    }


def test_a_grant_as_seam_sends_it() -> None:
    obj = {
        "access_grant_id": "g1",
        "access_method_ids": ["m1", "m2"],
        "instant_key_url": "https://ik.seam.co/ABC",
        "requested_access_methods": [
            {"mode": "code", "code": "5551234", "created_access_method_ids": ["m1"]},
            {"mode": "card", "card_number": "90017", "created_access_method_ids": ["m2"]},
        ],
        "errors": [],
        "warnings": [{"warning_code": "being_deleted", "message": "going"}],
    }
    stored = _same_as_the_walk(obj)
    assert "5551234" not in stored and "90017" not in stored and "ik.seam.co" not in stored
    assert json.loads(stored)["requested_access_methods"][1] == {
        "mode": "card",
        "created_access_method_ids": ["m2"],
    }


def test_what_is_not_an_object_is_stored_as_unreadable() -> None:
    assert scrubbed(["code"]) == raw_without_secrets(["code"]) == '{"unreadable": true}'
