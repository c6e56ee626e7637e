"""Entries of a Nuki lock's log as the contract's :class:`~drivers.base.LockEvent`.

The log index is the event's ``seq``. A keypad entry names the code id; the gateway's
directory (:mod:`drivers.nuki.codes`) maps it to the credential. Entries that are neither an
access nor a bolt event (door sensor, logging switched) have no event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from drivers.base import CredentialKind, EventKind, LockEvent
from drivers.nuki.messages import Completion, LockAction, LogEntry


def lock_event(
    entry: LogEntry,
    credential_of_code: Callable[[int], str | None],
    now: Callable[[], datetime],
) -> LockEvent | None:
    at = entry.at or now()
    keypad = entry.keypad
    if keypad is not None:
        _action, _source, completion, code_id = keypad
        cid = credential_of_code(code_id) if code_id else None
        if completion == Completion.SUCCESS:
            return LockEvent(
                entry.index,
                at,
                EventKind.ACCESS_ALLOWED,
                CredentialKind.CODE,
                cid,
                "valid_code",
                "lock",
            )
        reason = "not_allowed_now" if code_id else "unknown_code"
        return LockEvent(
            entry.index, at, EventKind.ACCESS_DENIED, CredentialKind.CODE, cid, reason, "lock"
        )
    action = entry.lock_action
    if action is not None:
        kind = EventKind.LOCKED if action[0] == LockAction.LOCK else EventKind.UNLOCKED
        return LockEvent(entry.index, at, kind, reason=f"by {entry.name or 'the lock'}")
    return None
