"""The cryptography of the Nuki Smart Lock API V2.1 (§4), on libsodium through PyNaCl.

* dh1: X25519 (``crypto_scalarmult_curve25519``);
* kdf1: HSalsa20 of the DH result with a zero input (``crypto_box_beforenm`` is dh1 + kdf1);
* h1: HMAC-SHA256, the pairing authenticators;
* e1: XSalsa20-Poly1305 secretbox with a 24-byte nonce;
* the CRC of every message: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), little-endian.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from nacl.bindings import (
    crypto_box_beforenm,
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_secretbox,
    crypto_secretbox_open,
)
from nacl.exceptions import CryptoError

KEY_LEN = 32
NONCE_LEN = 24
MAC_LEN = 16

Rng = Callable[[int], bytes]


class OpenError(Exception):
    """A sealed message that does not open with the key (forged, damaged or not ours)."""


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def public_key(private: bytes) -> bytes:
    return crypto_scalarmult_base(private)


def dh1(private: bytes, peer_public: bytes) -> bytes:
    """The raw X25519 result (the spec's key ``k``)."""
    return crypto_scalarmult(private, peer_public)


def shared_key(private: bytes, peer_public: bytes) -> bytes:
    """kdf1(dh1(...)): the long-term key ``s`` of one authorization."""
    return crypto_box_beforenm(peer_public, private)


def h1(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def authentic(key: bytes, authenticator: bytes, *parts: bytes) -> bool:
    return hmac.compare_digest(h1(key, *parts), authenticator)


def seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """e1: the ciphertext (MAC first, as NaCl's secretbox gives it), without the nonce."""
    return crypto_secretbox(plaintext, nonce, key)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    try:
        return crypto_secretbox_open(ciphertext, nonce, key)
    except CryptoError as err:
        raise OpenError("the message does not open with this key") from err


def new_private_key(rng: Rng = os.urandom) -> bytes:
    return rng(KEY_LEN)
