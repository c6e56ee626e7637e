"""Mobile keys: the phone proves its key to the lock (docs/mobile-keys.md).

A phone holds an Ed25519 private key that never leaves it. Locks (and the gateway) hold only
the public key, so nothing a lock stores lets anyone make a phone's key. For each attempt the
lock draws a fresh 16-byte challenge; the phone signs::

    "lockgate/1 mobile-key" ‖ 0x00 ‖ device_id(8) ‖ key_id(8) ‖ challenge(16)

where ``device_id`` is the lock's id and ``key_id`` = SHA-256(public key)[:8]. A recorded
exchange replayed later fails because the lock's challenge is different; a signature made for
one lock fails at any other lock because the lock's id is signed.

Messages on the mobile-key characteristic (each segmented like every datagram, see
:mod:`drivers.ble.segment`)::

    KEY_HELLO      01 ‖ version(u8) ‖ public_key(32)                    phone → lock
    KEY_CHALLENGE  02 ‖ challenge(16) ‖ device_id(8) ‖ lock_time(u32)   lock → phone
    KEY_PROOF      03 ‖ signature(64)                                   phone → lock
    KEY_RESULT     04 ‖ allow(u8) ‖ reason(str8)                        lock → phone

A lock that does not hold the key forwards the attempt to the gateway as
``AccessRequest(kind=mobile_key, secret=public_key_text(pk), proof=Proof(...).encode())``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers.lockproto.errors import DecodeError
from drivers.lockproto.wire import Reader, Writer

VERSION = 1
PUBLIC_KEY_LEN = 32
KEY_ID_LEN = 8
CHALLENGE_LEN = 16
DEVICE_ID_LEN = 8
SIGNATURE_LEN = 64
PROOF_LEN = CHALLENGE_LEN + DEVICE_ID_LEN + SIGNATURE_LEN
MAX_REASON_LEN = 32
_DOMAIN = b"lockgate/1 mobile-key\x00"

KEY_HELLO = 0x01
KEY_CHALLENGE = 0x02
KEY_PROOF = 0x03
KEY_RESULT = 0x04


# --- keys --------------------------------------------------------------------------------------
def key_id(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:KEY_ID_LEN]


def public_key_text(public_key: bytes) -> bytes:
    """The canonical text form (standard base64 with padding), as in the cloud's field."""
    if len(public_key) != PUBLIC_KEY_LEN:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return base64.b64encode(public_key)


def parse_public_key_text(text: bytes | str) -> bytes:
    """The raw key from its base64 text (standard or URL-safe, padding optional)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as err:
            raise ValueError("public key text is not ASCII") from err
    compact = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("public key is not base64") from err
    if len(raw) != PUBLIC_KEY_LEN:
        raise ValueError(f"public key has {len(raw)} bytes, not 32")
    return raw


def public_key_of(private_key: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(private_key)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


# --- the proof ---------------------------------------------------------------------------------
def signed_message(device_id: bytes, kid: bytes, challenge: bytes) -> bytes:
    if len(device_id) != DEVICE_ID_LEN or len(kid) != KEY_ID_LEN:
        raise ValueError("device id and key id must be 8 bytes")
    if len(challenge) != CHALLENGE_LEN:
        raise ValueError("challenge must be 16 bytes")
    return _DOMAIN + device_id + kid + challenge


def sign(private_key: bytes, device_id: bytes, challenge: bytes) -> bytes:
    """The phone's answer to ``challenge`` from lock ``device_id``."""
    kid = key_id(public_key_of(private_key))
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.sign(signed_message(device_id, kid, challenge))


@dataclass(frozen=True, slots=True)
class Proof:
    """What a lock keeps of one attempt, and forwards to the gateway when it asks."""

    challenge: bytes
    device_id: bytes
    signature: bytes

    def encode(self) -> bytes:
        return self.challenge + self.device_id + self.signature

    @classmethod
    def decode(cls, data: bytes) -> Proof:
        if len(data) != PROOF_LEN:
            raise DecodeError(f"mobile-key proof of {len(data)} bytes")
        c, d = CHALLENGE_LEN, CHALLENGE_LEN + DEVICE_ID_LEN
        return cls(data[:c], data[c:d], data[d:])


def verify(public_key: bytes, proof: Proof) -> bool:
    """Whether ``proof`` was signed by the holder of ``public_key`` (freshness is the caller's)."""
    if len(public_key) != PUBLIC_KEY_LEN or len(proof.signature) != SIGNATURE_LEN:
        return False
    try:
        message = signed_message(proof.device_id, key_id(public_key), proof.challenge)
        Ed25519PublicKey.from_public_bytes(public_key).verify(proof.signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- messages on the mobile-key characteristic ------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyHello:
    public_key: bytes
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class KeyChallenge:
    challenge: bytes
    device_id: bytes
    lock_time: int


@dataclass(frozen=True, slots=True)
class KeyProof:
    signature: bytes


@dataclass(frozen=True, slots=True)
class KeyResult:
    allow: bool
    reason: str


KeyMessage = KeyHello | KeyChallenge | KeyProof | KeyResult


def encode(msg: KeyMessage) -> bytes:
    w = Writer()
    match msg:
        case KeyHello():
            w.u8(KEY_HELLO).u8(msg.version).raw(_exact(msg.public_key, PUBLIC_KEY_LEN))
        case KeyChallenge():
            w.u8(KEY_CHALLENGE).raw(_exact(msg.challenge, CHALLENGE_LEN))
            w.raw(_exact(msg.device_id, DEVICE_ID_LEN)).u32(msg.lock_time)
        case KeyProof():
            w.u8(KEY_PROOF).raw(_exact(msg.signature, SIGNATURE_LEN))
        case KeyResult():
            reason = msg.reason.encode("utf-8")[:MAX_REASON_LEN].decode("utf-8", "ignore")
            w.u8(KEY_RESULT).u8(1 if msg.allow else 0).str8(reason)
    return w.getvalue()


def decode(data: bytes) -> KeyMessage:
    r = Reader(data)
    kind = r.u8()
    msg: KeyMessage
    if kind == KEY_HELLO:
        version = r.u8()
        msg = KeyHello(r.raw(PUBLIC_KEY_LEN), version)
    elif kind == KEY_CHALLENGE:
        msg = KeyChallenge(r.raw(CHALLENGE_LEN), r.raw(DEVICE_ID_LEN), r.u32())
    elif kind == KEY_PROOF:
        msg = KeyProof(r.raw(SIGNATURE_LEN))
    elif kind == KEY_RESULT:
        msg = KeyResult(bool(r.u8() & 1), r.str8(MAX_REASON_LEN))
    else:
        raise DecodeError(f"unknown mobile-key message 0x{kind:02x}")
    r.end()
    return msg


def _exact(value: bytes, n: int) -> bytes:
    if len(value) != n:
        raise ValueError(f"field must be {n} bytes, got {len(value)}")
    return value
