"""Notification reports from a lock as audit-log entries.

Access Control (type 6) names the user slot of keypad operations in ``parameters.userId``; the
slot map turns it into a credential id. The events kept: keypad, manual, RF and automatic
lock/unlock, jammed; Home Security tamper; Power Management battery warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.base import CredentialKind, EventKind, LockEvent

ACCESS_CONTROL = 6
HOME_SECURITY = 7
POWER_MANAGEMENT = 8
DUPLICATE_CODE = 15
JAMMED = 11

_ACCESS: dict[int, tuple[EventKind, str]] = {
    1: (EventKind.LOCKED, "manual"),
    2: (EventKind.UNLOCKED, "manual"),
    3: (EventKind.LOCKED, "rf"),
    4: (EventKind.UNLOCKED, "rf"),
    5: (EventKind.LOCKED, "keypad"),
    6: (EventKind.ACCESS_ALLOWED, "keypad"),
    9: (EventKind.LOCKED, "auto"),
    JAMMED: (EventKind.TAMPER, "jammed"),
}


@dataclass(frozen=True, slots=True)
class Heard:
    """What a notification means for the driver: an audit entry and/or a refused-code hint."""

    event: LockEvent | None = None
    duplicate_slot: int | None = None
    jammed: bool | None = None


def interpret(
    ntype: int,
    event: int,
    parameters: Any,
    at: datetime,
    credential_of: Callable[[int], str | None],
) -> Heard:
    user = parameters.get("userId") if isinstance(parameters, dict) else None
    slot = int(user) if isinstance(user, int) else None
    if ntype == ACCESS_CONTROL:
        if event == DUPLICATE_CODE:
            return Heard(duplicate_slot=slot)
        kind_reason = _ACCESS.get(event)
        if kind_reason is None:
            return Heard()
        kind, reason = kind_reason
        cid = credential_of(slot) if slot else None
        keypad = reason == "keypad"
        return Heard(
            LockEvent(
                seq=0,
                occurred_at=at,
                kind=kind,
                credential_kind=CredentialKind.CODE if keypad else None,
                credential_id=cid,
                reason=reason if cid or not keypad else f"keypad slot {slot} (not Lockgate's)",
                decided_by="lock",
            ),
            jammed=event == JAMMED,
        )
    if ntype == HOME_SECURITY and event in (3, 4):
        return Heard(LockEvent(0, at, EventKind.TAMPER, reason="tamper", decided_by="lock"))
    if ntype == POWER_MANAGEMENT and event in (10, 11, 14):
        return Heard(LockEvent(0, at, EventKind.BATTERY_LOW, reason="battery", decided_by="lock"))
    return Heard()
