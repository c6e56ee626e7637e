"""Encryption at rest for PIN codes, card numbers and key material.

One 32-byte master key lives in a file apart from the database (mode 0600, or a systemd
credential). From it HKDF derives three keys: one for AES-256-GCM encryption of secrets (the
row id is the associated data, so a ciphertext cannot be moved to another row), one for a keyed
index (HMAC-SHA256) that lets the validator find a PIN without decrypting every row, and one for
the content tags that locks store for read-back checks.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_NONCE = 12


class StoreKeyError(Exception):
    """The store key is missing, malformed, or not the key this database was written with."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, its padded key states hashed once: a sync takes
    tens of thousands of index and tag HMACs, and setting the key up was half of each."""

    BLOCK = 64

    def __init__(self, key: bytes) -> None:
        if len(key) > self.BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self.BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def start(self) -> hashlib._Hash:
        """A hash to ``update`` with the message, then to pass to :meth:`finish`."""
        return self._inner.copy()

    def finish(self, inner: hashlib._Hash) -> bytes:
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise StoreKeyError(f"store key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(_derive(master_key, b"lockgate store encryption v1"))
        self._index = _HmacSha256(_derive(master_key, b"lockgate secret index v1"))
        self._tag = _HmacSha256(_derive(master_key, b"lockgate content tag v1"))
        self.check_value = hmac.new(
            _derive(master_key, b"lockgate key check v1"), b"check", hashlib.sha256
        ).hexdigest()[:16]

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open(self, sealed: bytes, aad: str) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad.encode())

    def index(self, kind: str, secret: bytes) -> bytes:
        mac = self._index.start()
        mac.update(kind.encode() + b"\0")
        mac.update(secret)
        return self._index.finish(mac)

    def tag(self, *parts: bytes) -> bytes:
        """An HMAC of the parts, each prefixed with its length (so no two part lists give
        the same message), cut to 8 bytes."""
        mac = self._tag.start()
        for part in parts:
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return self._tag.finish(mac)[:8]
