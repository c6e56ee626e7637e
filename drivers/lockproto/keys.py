"""The long-term link keys a gateway keeps for one commissioned lock (docs/protocol.md §5.4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.lockproto.crypto import gateway_id, private_key, public_bytes

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

    def to_bytes(self) -> bytes:
        return _MAGIC + self.gateway_static + self.lock_static + self.long_term_key + self.device_id

    @classmethod
    def from_bytes(cls, data: bytes) -> LinkKeys:
        if len(data) != _LEN or not data.startswith(_MAGIC):
            raise ValueError("not a Lockgate link key record")
        body = data[len(_MAGIC) :]
        return cls(body[:32], body[32:64], body[64:96], body[96:104])
