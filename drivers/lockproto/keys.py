"""The long-term link keys a gateway keeps for one commissioned lock (docs/protocol.md §5.4).

They live in the driver context's key store under :func:`keystore_name`, whatever carries the
protocol (serial, BLE): :func:`load_link_keys`, :func:`require_link_keys`, :func:`save_link_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.base import KeyStore
from drivers.errors import LockAuthError
from drivers.lockproto.crypto import gateway_id, private_key, public_bytes, sha256

_MAGIC = b"LGK1"
_LEN = len(_MAGIC) + 32 + 32 + 32 + 8


def keystore_name(lock_id: str) -> str:
    return f"lockproto/{lock_id}"


@dataclass(frozen=True, slots=True)
class LinkKeys:
    gateway_static: bytes = field(repr=False)
    """The gateway's X25519 private key for this lock."""
    lock_static: bytes
    """The lock's X25519 public key, learnt at commissioning."""
    long_term_key: bytes = field(repr=False)
    device_id: bytes

    @property
    def gateway_public(self) -> bytes:
        return public_bytes(private_key(self.gateway_static))

    @property
    def gateway_id(self) -> bytes:
        return gateway_id(self.gateway_public)

    @property
    def log_origin(self) -> str:
        """The log this lock's ``seq`` count in: its device id and a fingerprint of its static
        key, both proven in commissioning (the lock's PAIR_DONE) and in every session (the
        HELLO_REPLY's confirm). The protocol numbers a lock's log for its whole life (§7.3.4):
        a lock that loses its log loses these with it (one flash) and draws new ones."""
        return f"lockproto:{self.device_id.hex()}/{sha256(self.lock_static)[:8].hex()}"

    def to_bytes(self) -> bytes:
        return _MAGIC + self.gateway_static + self.lock_static + self.long_term_key + self.device_id

    @classmethod
    def from_bytes(cls, data: bytes) -> LinkKeys:
        if len(data) != _LEN or not data.startswith(_MAGIC):
            raise ValueError("not a Lockgate link key record")
        body = data[len(_MAGIC) :]
        return cls(body[:32], body[32:64], body[64:96], body[96:104])


def load_link_keys(keystore: KeyStore, lock_id: str) -> LinkKeys | None:
    """The lock's link keys; ``None`` before it is commissioned. Damaged keys raise
    :class:`~drivers.errors.LockAuthError` (commission the lock again)."""
    raw = keystore.get(keystore_name(lock_id))
    if raw is None:
        return None
    try:
        return LinkKeys.from_bytes(raw)
    except ValueError as err:
        raise LockAuthError("stored link keys are damaged", lock_id=lock_id) from err


def require_link_keys(keystore: KeyStore, lock_id: str) -> LinkKeys:
    """The lock's link keys, or :class:`~drivers.errors.LockAuthError` when it is not
    commissioned (or its keys are damaged)."""
    keys = load_link_keys(keystore, lock_id)
    if keys is None:
        raise not_commissioned(lock_id)
    return keys


def not_commissioned(lock_id: str) -> LockAuthError:
    return LockAuthError(
        f"lock not commissioned: pair it with the secret on its label, on the gateway "
        f"'lockgate commission {lock_id} --secret-file FILE' (or remotely 'lockgate ctl "
        f"commission lock_id={lock_id} --secret-file FILE')",
        lock_id=lock_id,
    )


def save_link_keys(keystore: KeyStore, lock_id: str, keys: LinkKeys) -> None:
    keystore.put(keystore_name(lock_id), keys.to_bytes())
