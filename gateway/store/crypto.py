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


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise StoreKeyError(f"store key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(_derive(master_key, b"lockgate store encryption v1"))
        self._index_key = _derive(master_key, b"lockgate secret index v1")
        self._tag_key = _derive(master_key, b"lockgate content tag v1")
        self.check_value = hmac.new(
            _derive(master_key, b"lockgate key check v1"), b"check", hashlib.sha256
        ).hexdigest()[:16]

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open(self, sealed: bytes, aad: str) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad.encode())

    def index(self, kind: str, secret: bytes) -> bytes:
        return hmac.new(self._index_key, kind.encode() + b"\0" + secret, hashlib.sha256).digest()

    def tag(self, *parts: bytes) -> bytes:
        mac = hmac.new(self._tag_key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(4, "big") + part)
        return mac.digest()[:8]
