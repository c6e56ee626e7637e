"""Secret arguments sealed to the gateway: only the gateway can read them, not the broker.

A request is signed (integrity, replay) and TLS protects each hop, but the broker and any
client the ACL lets read request topics would see an argument sent in clear. So the PIN of
``test_credential`` and the pairing secret of ``commission`` travel sealed to the gateway's
long-term X25519 *command key* (created on first start, kept in the encrypted store, its public
half published as ``command_key`` in the retained gateway state and the ``status`` answer)::

    {"sealed": base64(ephemeral_pub(32) || nonce(12) || ChaCha20-Poly1305 ciphertext+tag)}

    key  = HKDF-SHA256(X25519(ephemeral, gateway_pub), salt=None, length=32,
                       info=b"lockgate mqtt sealed v1" + gateway_id + b"\\0" + command
                            + b"\\0" + field)
    aad  = the request's auth.nonce (UTF-8)

The ``info`` binds a blob to one gateway, command and field; the AAD binds it to one signed
request, so a sealed value cannot be moved into another request. Opened values are returned
as :class:`~pydantic.SecretStr` and never logged.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from drivers.base import KeyStore

INFO_PREFIX = b"lockgate mqtt sealed v1"
KEY_NAME = "mqtt_command_key"
KEYSTORE_ID = "_gateway"
"""The store's key store for the gateway's own keys (lock ids cannot start with ``_``)."""
PUB_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MIN_BLOB_BYTES = PUB_BYTES + NONCE_BYTES + TAG_BYTES


class SealError(Exception):
    """A sealed value that does not open (wrong key, request, command, field, or tampered)."""


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: X25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode()


def public_key_from_b64(value: str) -> X25519PublicKey:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("command_key is not base64") from None
    if len(raw) != PUB_BYTES:
        raise ValueError("command_key must be the 32-byte raw X25519 key")
    return X25519PublicKey.from_public_bytes(raw)


def load_or_create(keystore: KeyStore) -> X25519PrivateKey:
    """The gateway's command key, created and stored (encrypted) on first use."""
    raw = keystore.get(KEY_NAME)
    if raw is None:
        key = X25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        keystore.put(KEY_NAME, raw)
        return key
    return X25519PrivateKey.from_private_bytes(raw)


def info(gateway_id: str, command: str, field: str) -> bytes:
    return b"".join(
        (INFO_PREFIX, gateway_id.encode(), b"\0", command.encode(), b"\0", field.encode())
    )


def _derive(shared: bytes, gateway_id: str, command: str, field: str) -> ChaCha20Poly1305:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=info(gateway_id, command, field)
    ).derive(shared)
    return ChaCha20Poly1305(key)


def seal(
    gateway_key: X25519PublicKey,
    plaintext: str,
    *,
    gateway_id: str,
    command: str,
    field: str,
    nonce: str,
) -> dict[str, str]:
    """The ``{"sealed": ...}`` value of ``field`` for a request signed with ``nonce``."""
    ephemeral = X25519PrivateKey.generate()
    aead = _derive(ephemeral.exchange(gateway_key), gateway_id, command, field)
    iv = os.urandom(NONCE_BYTES)
    ct = aead.encrypt(iv, plaintext.encode("utf-8"), nonce.encode("utf-8"))
    blob = _raw_public(ephemeral.public_key()) + iv + ct
    return {"sealed": base64.b64encode(blob).decode()}


class Opener:
    """Opens values sealed to this gateway's command key."""

    def __init__(self, key: X25519PrivateKey, gateway_id: str) -> None:
        self._key = key
        self._gateway_id = gateway_id
        self.public_b64 = public_key_b64(key.public_key())

    def open(self, blob: bytes, *, command: str, field: str, nonce: str) -> str:
        if len(blob) < MIN_BLOB_BYTES:
            raise SealError("too short")
        ephemeral = blob[:PUB_BYTES]
        iv = blob[PUB_BYTES : PUB_BYTES + NONCE_BYTES]
        ct = blob[PUB_BYTES + NONCE_BYTES :]
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            aead = _derive(shared, self._gateway_id, command, field)
            plain = aead.decrypt(iv, ct, nonce.encode("utf-8"))
            return plain.decode("utf-8")
        except (InvalidTag, ValueError, UnicodeDecodeError):
            raise SealError("does not open") from None
