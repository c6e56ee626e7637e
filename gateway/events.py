"""Access events: every allow and deny, every bolt movement, as they go to the outbox.

A payload never holds a secret: it names the access method and grant, never the PIN or card.
``event_id`` is stable (``<lock>:<seq>`` for entries of a lock's audit log, ``<lock>:<epoch>:<seq>``
once the lock's log was replaced (:mod:`gateway.log_epochs`), a random UUID for the gateway's
own decisions) so a consumer can drop duplicates.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import msgspec

from drivers.base import LockEvent, SecurityAlert
from gateway.log_epochs import event_id

_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
"""A random hex digit with its top two bits set to ``10``: the RFC 4122 variant (what
``uuid.uuid4`` sets, with version 4)."""

_ID_BATCH = 256
"""Random ids drawn from the kernel at a time (one ``urandom`` call, not one per decision)."""


class _Ids:
    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(16 * _ID_BATCH), 0
        self._at = at + 16
        h = self._pool[at : at + 16].hex()
        # version 4 in the 13th digit, the variant's two top bits (10) in the 17th
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_ids = _Ids()


class AccessEvent(msgspec.Struct, frozen=True):
    """An immutable record (a msgspec struct: built in a tenth of a frozen dataclass's time,
    one per decision)."""

    event_id: str
    occurred_at: datetime
    kind: str
    lock_id: str | None = None
    source: str = "gateway"
    """``gateway`` for the validator's decisions, ``lock`` for the lock's own audit log."""
    credential_kind: str | None = None
    access_method_id: str | None = None
    access_grant_id: str | None = None
    user_identity_id: str | None = None
    reason: str | None = None
    lock_seq: int | None = None
    detail: str | None = None
    """What else a reader needs, never a secret: what a security alert saw, why a credential
    was refused (the validator's detail), or that another user's grant asked for the same code
    on this lock and was refused (``duplicate_code_on_device``)."""
    lock_epoch: int | None = None
    """Which of the logs read under this lock id ``lock_seq`` counts in (:mod:`gateway.log_epochs`):
    absent for the first one, 1, 2... after the lock was replaced or its log started again."""

    def payload(self) -> dict[str, Any]:
        # Every field is a plain value: no need for asdict's deep copies (one per decision).
        values = msgspec.structs.astuple(self)
        data = {k: v for k, v in zip(_FIELDS, values, strict=True) if v is not None}
        data["occurred_at"] = self.occurred_at.isoformat()
        return data

    def payload_json(self) -> str:
        """:meth:`payload` as JSON text (what the outbox stores): the same keys in the same
        order, encoded from a struct that omits what is ``None`` (no dict built; one a
        recorded decision)."""
        values = msgspec.structs.astuple(self)
        payload = _Payload(values[0], self.occurred_at.isoformat(), *values[2:])
        return _encode(payload).decode()

    new_id = staticmethod(_ids.next)
    """A random (version 4) UUID, as ``str(uuid.uuid4())`` gives it (``_Ids.next`` itself: no
    frame around it, one a recorded decision)."""

    @classmethod
    def security_alert(cls, alert: SecurityAlert, at: datetime) -> AccessEvent:
        """Kind ``security_alert``, ``reason`` the alert's kind (``rogue_device``...)."""
        return cls(
            event_id=cls.new_id(),
            occurred_at=at,
            kind="security_alert",
            lock_id=alert.lock_id,
            source="gateway",
            reason=alert.kind,
            detail=alert.detail,
        )

    @classmethod
    def from_lock(
        cls,
        lock_id: str,
        event: LockEvent,
        grant_id: str | None,
        user_identity_id: str | None = None,
        detail: str | None = None,
        epoch: int = 0,
    ) -> AccessEvent:
        return cls(
            event_id=event_id(lock_id, epoch, event.seq),
            occurred_at=event.occurred_at,
            kind=event.kind.value,
            lock_id=lock_id,
            source="lock",
            credential_kind=event.credential_kind.value if event.credential_kind else None,
            access_method_id=event.credential_id,
            access_grant_id=grant_id,
            user_identity_id=user_identity_id,
            reason=event.reason,
            lock_seq=event.seq,
            detail=detail,
            lock_epoch=epoch or None,
        )


class _Payload(msgspec.Struct, omit_defaults=True):
    """:class:`AccessEvent`'s fields in its order, every one optional, the time as text."""

    event_id: str | None = None
    occurred_at: str | None = None
    kind: str | None = None
    lock_id: str | None = None
    source: str | None = None
    credential_kind: str | None = None
    access_method_id: str | None = None
    access_grant_id: str | None = None
    user_identity_id: str | None = None
    reason: str | None = None
    lock_seq: int | None = None
    detail: str | None = None
    lock_epoch: int | None = None


_FIELDS = AccessEvent.__struct_fields__
assert _Payload.__struct_fields__ == _FIELDS
_encode = msgspec.json.Encoder().encode
