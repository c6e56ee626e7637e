"""The gateway's identity: an Ed25519 key that signs what the gateway says on MQTT.

Operators sign what they ask (:mod:`gateway.mqtt.auth`); the gateway signs what it answers.
Without that, whoever can publish on the response topics — the broker first of all — could
answer ``status`` in the gateway's place with a ``command_key`` of its own and open every
secret sealed to it. So:

* the identity key is made once (``lockgate identity`` at install, else the first start) and
  kept in the store's encrypted key store (``_gateway/mqtt_identity_key``) like the command key;
* every response is signed over the request it answers (the SHA-256 of the request's bytes),
  the command and the gateway id, so a signed answer cannot be moved to another request;
* every retained state document is signed over its topic and the gateway id;
* the command key that secrets are sealed to is bound to the identity by a signature of its
  own (``command_key_sig``), so a sealer accepts only a key the pinned identity vouches for.

Operators pin the identity (its base64, or the fingerprint to compare) when they enrol;
``lockgate ctl`` trusts it on first use at the latest and refuses an answer signed by any
other key. The signature is the ``sig`` member (base64) of the JSON object it covers::

    response: b"lockgate-response-v1\\n" + canonical_json({"command", "gateway_id",
              "request": base64url(sha256(request bytes)), "response": <the object without sig>})
    document: b"lockgate-state-v1\\n" + canonical_json({"document": <without sig>,
              "gateway_id", "topic"})
    command key: b"lockgate-command-key-v1\\n" + canonical_json({"command_key": <base64>,
              "gateway_id"})
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from gateway.mqtt.auth import canonical_json, public_key_b64, public_key_from_b64

if TYPE_CHECKING:
    from drivers.base import KeyStore

KEY_NAME = "mqtt_identity_key"
"""In the gateway's own key store (:data:`gateway.mqtt.sealed.KEYSTORE_ID`)."""
SIG = "sig"
RESPONSE_DOMAIN = b"lockgate-response-v1\n"
DOCUMENT_DOMAIN = b"lockgate-state-v1\n"
COMMAND_KEY_DOMAIN = b"lockgate-command-key-v1\n"

JsonObject = dict[str, Any]


class IdentityError(Exception):
    """Something claims to come from the gateway but is not signed by its identity."""


def load_or_create(keystore: KeyStore) -> Ed25519PrivateKey:
    """The gateway's identity key, created and stored (encrypted) on first use."""
    raw = keystore.get(KEY_NAME)
    if raw is None:
        key = Ed25519PrivateKey.generate()
        keystore.put(KEY_NAME, key.private_bytes_raw())
        return key
    return Ed25519PrivateKey.from_private_bytes(raw)


def fingerprint(public_b64: str) -> str:
    """A short form to compare by eye or read over the phone: SHA-256, 16 bytes, hex groups."""
    digest = hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def request_digest(request: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(request).digest()).decode().rstrip("=")


_CANONICAL_PLAIN = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
)


def canonical_body(obj: JsonObject) -> bytes:
    """The canonical JSON of ``obj`` without ``sig``, values that are not JSON (datetimes)
    as the strings they are sent as: the bytes a receiver rebuilds from what it parsed.

    One pass, for objects whose keys are strings at every depth (every answer and document
    the gateway builds): the same bytes as ``canonical_json`` of ``obj`` sent and parsed
    back (tested). A key that is not a string would be sorted before JSON makes it one, and
    the answer would not verify (fails closed; the MQTT tests verify every answer)."""
    if SIG in obj:
        obj = {k: v for k, v in obj.items() if k != SIG}
    return _CANONICAL_PLAIN.encode(obj).encode("utf-8")


def response_message(gateway_id: str, command: str, request: bytes, response: JsonObject) -> bytes:
    return _response_head(gateway_id, command) + _response_tail(request, canonical_body(response))


def _response_head(gateway_id: str, command: str) -> bytes:
    """What a response's signature covers, up to the request's digest."""
    return (
        RESPONSE_DOMAIN
        + b'{"command":'
        + canonical_json(command)
        + b',"gateway_id":'
        + canonical_json(gateway_id)
        + b',"request":'
    )


def _response_tail(request: bytes, body: bytes) -> bytes:
    """The rest: ``body`` is the response's canonical JSON (without ``sig``), spliced in as
    it is sent rather than serialised a second time. Head and tail are the same bytes as
    ``canonical_json`` of the four members (their names are in sorted order; the digest is
    base64url, which JSON writes as it is)."""
    return b'"' + request_digest(request).encode() + b'","response":' + body + b"}"


def document_message(gateway_id: str, topic: str, document: JsonObject) -> bytes:
    return _document_message(gateway_id, topic, canonical_body(document))


def _document_message(gateway_id: str, topic: str, body: bytes) -> bytes:
    """What a retained document's signature covers (``body`` as in :func:`_response_tail`)."""
    return (
        DOCUMENT_DOMAIN
        + b'{"document":'
        + body
        + b',"gateway_id":'
        + canonical_json(gateway_id)
        + b',"topic":'
        + canonical_json(topic)
        + b"}"
    )


def command_key_message(gateway_id: str, command_key: str) -> bytes:
    return COMMAND_KEY_DOMAIN + canonical_json(
        {"command_key": command_key, "gateway_id": gateway_id}
    )


def _with_sig(body: bytes, sig: str) -> bytes:
    """``body`` (a JSON object without ``sig``) with ``"sig": sig`` as its first member."""
    head = b'{"sig":"' + sig.encode() + b'"'
    return head + (b"}" if body == b"{}" else b"," + body[1:])


MAX_HEADS = 64
"""Response heads kept per identity (one per command name; names come from topics)."""


class GatewayIdentity:
    """Signs the gateway's answers and retained documents."""

    def __init__(self, key: Ed25519PrivateKey, gateway_id: str) -> None:
        # libsodium signs the same (deterministic) Ed25519 signature as OpenSSL in about two
        # thirds of the time (measured here); the key is turned into its form once.
        _, self._secret = crypto_sign_seed_keypair(key.private_bytes_raw())
        self.gateway_id = gateway_id
        self.public_b64 = public_key_b64(key.public_key())
        self._heads: dict[str, bytes] = {}
        """Per command, the start of what its answers' signatures cover."""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_b64)

    def _sign(self, message: bytes) -> str:
        return base64.b64encode(crypto_sign(message, self._secret)[:64]).decode()

    def _head(self, command: str) -> bytes:
        head = self._heads.get(command)
        if head is None:
            head = _response_head(self.gateway_id, command)
            if len(self._heads) < MAX_HEADS:
                self._heads[command] = head
        return head

    def sign_response(self, command: str, request: bytes, response: JsonObject) -> JsonObject:
        """:meth:`signed_response`, parsed (as a receiver sees it)."""
        signed: JsonObject = json.loads(self.signed_response(command, request, response))
        return signed

    def sign_document(self, topic: str, document: JsonObject) -> JsonObject:
        """:meth:`signed_document`, parsed."""
        signed: JsonObject = json.loads(self.signed_document(topic, document))
        return signed

    def signed_response(self, command: str, request: bytes, response: JsonObject) -> bytes:
        """The response as sent: its JSON with ``sig``, the signature over the request."""
        body = canonical_body(response)
        message = self._head(command) + _response_tail(request, body)
        return _with_sig(body, self._sign(message))

    def signed_document(self, topic: str, document: JsonObject) -> bytes:
        """The retained document as sent: its JSON with ``sig`` over its topic."""
        body = canonical_body(document)
        return _with_sig(body, self._sign(_document_message(self.gateway_id, topic, body)))

    def bind_command_key(self, command_key: str) -> str:
        return self._sign(command_key_message(self.gateway_id, command_key))


# --- verifying (lockgate ctl, and anyone else) --------------------------------------------
def _verify(identity: str, sig: object, message: bytes, what: str) -> None:
    if not isinstance(sig, str):
        raise IdentityError(f"{what} is not signed by the gateway")
    try:
        key: Ed25519PublicKey = public_key_from_b64(identity)
        key.verify(base64.b64decode(sig, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        raise IdentityError(f"{what} is not signed by the gateway's identity") from None


def verify_response(
    identity: str, gateway_id: str, command: str, request: bytes, response: JsonObject
) -> None:
    """Raise :class:`IdentityError` unless ``response`` is the gateway's answer to ``request``."""
    message = response_message(gateway_id, command, request, response)
    _verify(identity, response.get(SIG), message, "the answer")


def verify_document(identity: str, gateway_id: str, topic: str, document: JsonObject) -> None:
    message = document_message(gateway_id, topic, document)
    _verify(identity, document.get(SIG), message, f"the document on {topic}")


def verify_command_key(identity: str, gateway_id: str, command_key: str, sig: object) -> None:
    """Raise :class:`IdentityError` unless the identity vouches for ``command_key``."""
    _verify(identity, sig, command_key_message(gateway_id, command_key), "command_key")
