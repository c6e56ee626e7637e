"""Access events: every allow and deny, every bolt movement, as they go to the outbox.

A payload never holds a secret: it names the access method and grant, never the PIN or card.
``event_id`` is stable (``<lock>:<seq>`` for entries of a lock's audit log, a random UUID for
the gateway's own decisions) so a consumer can drop duplicates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from drivers.base import LockEvent, SecurityAlert


@dataclass(frozen=True, slots=True)
class AccessEvent:
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

    def payload(self) -> dict[str, Any]:
        # Every field is a plain value: no need for asdict's deep copies (one per decision).
        data = {name: getattr(self, name) for name in _FIELDS}
        data["occurred_at"] = self.occurred_at.isoformat()
        return {k: v for k, v in data.items() if v is not None}

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

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
    ) -> AccessEvent:
        return cls(
            event_id=f"{lock_id}:{event.seq}",
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
        )


_FIELDS = tuple(f.name for f in fields(AccessEvent))
