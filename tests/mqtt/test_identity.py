"""The gateway's signed answers and documents, as bytes: serialised once, and exactly what a
receiver checks (the canonical JSON of what it parsed, without ``sig``)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.mqtt.auth import canonical_json, public_key_from_b64
from gateway.mqtt.identity import (
    DOCUMENT_DOMAIN,
    RESPONSE_DOMAIN,
    GatewayIdentity,
    IdentityError,
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
