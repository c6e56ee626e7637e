"""Key schedule of the lock protocol (docs/protocol.md §5 and §6).

Everything here is a pure function of its inputs so that the test vectors in the document can
be regenerated from fixed keys. Randomness is passed in as ``rng(n) -> bytes``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers.lockproto.errors import IntegrityError

PROTOCOL_VERSION = 1
VERSION_MIN = 1
VERSION_MAX = 1
PAIRING_SECRET_LEN = 16

Rng = Callable[[int], bytes]

_PAIR_LABEL = b"lockgate/1 pair"
_PAIR_INFO = b"lockgate/1 pairing keys"
_SESSION_LABEL = b"lockgate/1 session"
_SESSION_INFO = b"lockgate/1 session keys"


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def mac16(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()[:16]


def same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def private_key(raw: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw)


def public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(own: bytes, peer_public: bytes) -> bytes:
    """X25519; a peer key of low order (all-zero result) is refused as forged."""
    try:
        return private_key(own).exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as err:
        raise IntegrityError("X25519 with a low-order public key") from err


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def gateway_id(gateway_static_public: bytes) -> bytes:
    """The 8-byte name a gateway's static key goes by in HELLO."""
    return sha256(gateway_static_public)[:8]


# --- pairing (commissioning) -------------------------------------------------------------
# ``offered`` is the (min, max) version range the gateway sent, ``version`` the one the lock
# chose: both enter the transcripts, so a downgrade of the offer breaks the MACs.
def pairing_transcript(
    offered: tuple[int, int],
    version: int,
    gateway_nonce: bytes,
    gateway_static: bytes,
    device_id: bytes,
    lock_nonce: bytes,
    lock_static: bytes,
) -> bytes:
    return sha256(
        _PAIR_LABEL,
        bytes((*offered, version)),
        gateway_nonce,
        gateway_static,
        device_id,
        lock_nonce,
        lock_static,
    )


@dataclass(frozen=True, slots=True)
class PairingKeys:
    proof_key: bytes
    long_term_key: bytes

    def gateway_proof(self, transcript: bytes) -> bytes:
        return mac16(self.proof_key, b"gateway", transcript)

    def lock_proof(self, transcript: bytes) -> bytes:
        return mac16(self.proof_key, b"lock", transcript)


def pairing_keys(pairing_secret: bytes, static_shared: bytes, transcript: bytes) -> PairingKeys:
    okm = hkdf(pairing_secret + static_shared, transcript, _PAIR_INFO, 64)
    return PairingKeys(okm[:32], okm[32:])


# --- per-connection session -------------------------------------------------------------
def session_transcript(
    offered: tuple[int, int],
    version: int,
    gateway_id_: bytes,
    device_id: bytes,
    session_id: int,
    gateway_nonce: bytes,
    lock_nonce: bytes,
    gateway_ephemeral: bytes,
    lock_ephemeral: bytes,
) -> bytes:
    return sha256(
        _SESSION_LABEL,
        bytes((*offered, version)),
        gateway_id_,
        device_id,
        session_id.to_bytes(4, "little"),
        gateway_nonce,
        lock_nonce,
        gateway_ephemeral,
        lock_ephemeral,
    )


@dataclass(frozen=True, slots=True)
class SessionKeys:
    gateway_to_lock: bytes
    lock_to_gateway: bytes
    confirm_key: bytes

    def confirm(self, transcript: bytes) -> bytes:
        return mac16(self.confirm_key, transcript)


def session_keys(
    long_term_key: bytes, ephemeral_shared: bytes, static_shared: bytes, transcript: bytes
) -> SessionKeys:
    okm = hkdf(ephemeral_shared + static_shared, long_term_key, _SESSION_INFO + transcript, 96)
    return SessionKeys(okm[:32], okm[32:64], okm[64:])


# --- sealing ------------------------------------------------------------------------------
_NONCE = struct.Struct("<4xQ")


def aead_nonce(counter: int) -> bytes:
    """Four zero bytes, then the counter (u64, little-endian)."""
    return _NONCE.pack(counter)


class Sealer:
    """ChaCha20-Poly1305 with the counter as nonce and the datagram header as associated data."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def seal(self, counter: int, header: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(aead_nonce(counter), plaintext, header)

    def open(self, counter: int, header: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(aead_nonce(counter), sealed, header)
        except Exception as err:  # cryptography raises InvalidTag
            raise IntegrityError("AEAD tag does not verify") from err


# --- the pairing secret as printed on a label ----------------------------------------------
def format_pairing_secret(secret: bytes) -> str:
    """16 bytes as 26 base32 characters in groups of four (``ABCD-EFGH-...-YZ``)."""
    text = base64.b32encode(secret).decode("ascii").rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_pairing_secret(text: str) -> bytes:
    """Read a printed pairing secret (case, dashes and spaces do not matter)."""
    compact = "".join(ch for ch in text.upper() if ch not in "- ")
    padded = compact + "=" * (-len(compact) % 8)
    try:
        secret = base64.b32decode(padded)
    except (binascii.Error, ValueError) as err:
        raise ValueError("pairing secret is not base32") from err
    if len(secret) != PAIRING_SECRET_LEN:
        raise ValueError(f"pairing secret must hold {PAIRING_SECRET_LEN} bytes")
    return secret
