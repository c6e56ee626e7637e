"""The gateway's signed answers and documents, as bytes: serialised once, and exactly what a
receiver checks (the canonical JSON of what it parsed, without ``sig``)."""

from __future__ import annotations

import base64
import enum
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes

from gateway.mqtt.auth import canonical_json, public_key_from_b64
from gateway.mqtt.connection import correlation_properties, v5_properties
from gateway.mqtt.identity import (
    DOCUMENT_DOMAIN,
    RESPONSE_DOMAIN,
    GatewayIdentity,
    IdentityError,
    canonical_body,
    document_message,
    request_digest,
    response_message,
    verify_document,
    verify_response,
)

REQUEST = b'{"transaction":"t-1","args":{}}'
RESPONSE = {
    "status": "ok",
    "data": {
        "name": "Porte d'entrée ✓",
        "at": datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        "counts": {"b": 2, "a": 1},
        "list": [1.5, None, True, "x"],
        "empty": {},
    },
    "error": None,
    "transaction": "t-1",
}


@pytest.fixture
def identity() -> GatewayIdentity:
    return GatewayIdentity(Ed25519PrivateKey.generate(), "gw-é")


def test_a_signed_answer_verifies_as_received(identity: GatewayIdentity) -> None:
    body = identity.signed_response("status", REQUEST, RESPONSE)
    received = json.loads(body)
    verify_response(identity.public_b64, "gw-é", "status", REQUEST, received)
    assert received["data"]["at"] == "2026-12-01 10:00:00+00:00"
    assert received == identity.sign_response("status", REQUEST, RESPONSE)
    # The signature covers the very message the receiver rebuilds from what it parsed.
    without = {k: v for k, v in received.items() if k != "sig"}
    message = response_message("gw-é", "status", REQUEST, without)
    public_key_from_b64(identity.public_b64).verify(base64.b64decode(received["sig"]), message)
    for forged in (
        {**received, "status": "error"},
        {**received, "data": {**received["data"], "name": "x"}},
    ):
        with pytest.raises(IdentityError):
            verify_response(identity.public_b64, "gw-é", "status", REQUEST, forged)
    with pytest.raises(IdentityError):
        verify_response(identity.public_b64, "gw-é", "status", b"another request", received)


def test_the_signed_messages_are_the_canonical_json_a_receiver_rebuilds() -> None:
    """The messages are spliced from the body as sent; they must be byte for byte the
    documented form, canonical JSON of the named members, for any receiver's own code."""
    plain = json.loads(json.dumps(RESPONSE, default=str))
    assert response_message("gw-é", "st\"atus", REQUEST, RESPONSE) == RESPONSE_DOMAIN + (
        canonical_json(
            {
                "command": 'st"atus',
                "gateway_id": "gw-é",
                "request": request_digest(REQUEST),
                "response": plain,
            }
        )
    )
    topic = "lockgate/gw-é/state"
    assert document_message("gw-é", topic, RESPONSE) == DOCUMENT_DOMAIN + canonical_json(
        {"document": plain, "gateway_id": "gw-é", "topic": topic}
    )


def test_a_signed_document_verifies_as_received(identity: GatewayIdentity) -> None:
    topic = "lockgate/gw-é/state"
    for doc in ({"gateway_id": "gw-é", "at": datetime(2026, 1, 1, tzinfo=UTC)}, {}):
        received = json.loads(identity.signed_document(topic, doc))
        verify_document(identity.public_b64, "gw-é", topic, received)
        without = {k: v for k, v in received.items() if k != "sig"}
        assert document_message("gw-é", topic, without).startswith(b"lockgate-state-v1\n")
        with pytest.raises(IdentityError):
            verify_document(identity.public_b64, "gw-é", topic + "/x", received)


class _Kind(enum.StrEnum):
    A = "a-kind"


class _Level(enum.IntEnum):
    TWO = 2


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.sampled_from([_Kind.A, _Level.TWO])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=24,
)
OBJECTS = st.dictionaries(st.text(max_size=8) | st.just("sig"), VALUES, max_size=6)


def as_received(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` sent as JSON (what is not JSON as its string) and parsed back, without sig."""
    parsed: dict[str, Any] = json.loads(json.dumps(obj, default=str))
    parsed.pop("sig", None)
    return parsed


@settings(max_examples=300, deadline=None)
@given(obj=OBJECTS)
def test_the_body_made_in_one_pass_is_the_canonical_json_a_receiver_rebuilds(
    obj: dict[str, Any],
) -> None:
    assert canonical_body(obj) == canonical_json(as_received(obj))


@settings(max_examples=60, deadline=None)
@given(data=VALUES, command=st.sampled_from(["status", "unlock", 'st"é']))
def test_every_signed_answer_verifies_and_is_the_canonical_form_of_its_content(
    data: object, command: str
) -> None:
    identity = GatewayIdentity(KEY, "gw-é")
    request = json.dumps({"transaction": "t", "args": {}}).encode()
    response = {"status": "ok", "data": data, "error": None, "transaction": "t"}
    body = identity.signed_response(command, request, response)
    received = json.loads(body)
    verify_response(identity.public_b64, "gw-é", command, request, received)
    sig = received.pop("sig")
    # The bytes on the wire: the canonical JSON of what they say, with sig as first member.
    assert body == b'{"sig":"' + sig.encode() + b'",' + canonical_json(received)[1:]
    assert received == as_received(response)


KEY = Ed25519PrivateKey.generate()


@pytest.mark.parametrize("size", [0, 1, 8, 16, 125, 127, 128, 200, 16380, 16384, 65535])
def test_correlation_properties_pack_as_paho_packs_them(size: int) -> None:
    correlation = os.urandom(size)
    made = correlation_properties(correlation)
    by_paho = v5_properties(PacketTypes.PUBLISH, CorrelationData=correlation)
    assert made.pack() == by_paho.pack()  # type: ignore[no-untyped-call]
    assert made.CorrelationData == correlation  # type: ignore[attr-defined]
    assert str(made) == str(by_paho)
    with pytest.raises(TypeError):
        made.ResponseTopic = "x"  # what it packs is always what it holds
    with pytest.raises(ValueError, match="65535"):
        correlation_properties(bytes(65536))
