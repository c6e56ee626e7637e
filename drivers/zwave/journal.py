"""The driver's own audit log for one lock, behind the contract's cursor and ack.

Z-Wave locks push events (Notification reports) and keep no log the gateway could read back, so
the driver numbers each event it hears and keeps it in the gateway's encrypted key store until
the gateway acknowledges it: a crash between hearing and recording loses nothing. The
sequence number survives restarts; at most ``capacity`` unacknowledged entries are kept (the
oldest go first, with an ``events_lost`` entry saying so).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from drivers.base import CredentialKind, EventKind, EventPage, KeyStore, LockEvent

JOURNAL_NAME = "zwave/journal"
CAPACITY = 2000


def _to_json(e: LockEvent) -> dict[str, object]:
    return {
        "seq": e.seq,
        "at": e.occurred_at.isoformat(),
        "kind": e.kind.value,
        "ck": e.credential_kind.value if e.credential_kind else None,
        "id": e.credential_id,
        "reason": e.reason,
        "by": e.decided_by,
    }


def _from_json(d: dict[str, object]) -> LockEvent:
    ck = d.get("ck")
    cid = d.get("id")
    reason = d.get("reason")
    by = d.get("by")
    return LockEvent(
        seq=int(str(d["seq"])),
        occurred_at=datetime.fromisoformat(str(d["at"])),
        kind=EventKind(str(d["kind"])),
        credential_kind=CredentialKind(str(ck)) if ck else None,
        credential_id=str(cid) if cid is not None else None,
        reason=str(reason) if reason is not None else None,
        decided_by=str(by) if by is not None else None,
    )


class Journal:
    def __init__(self, keystore: KeyStore, capacity: int = CAPACITY) -> None:
        self._keystore = keystore
        self._capacity = capacity
        self.events: list[LockEvent] = []
        self.last_seq = 0
        self.ever_connected = False
        """The lock was reached before: a later (re)connect means events may have been lost."""
        raw = keystore.get(JOURNAL_NAME)
        if raw is not None:
            data = json.loads(raw)
            self.events = [_from_json(d) for d in data["events"]]
            self.last_seq = int(data["last_seq"])
            self.ever_connected = bool(data.get("ever_connected", False))

    def _save(self) -> None:
        data = {
            "events": [_to_json(e) for e in self.events],
            "last_seq": self.last_seq,
            "ever_connected": self.ever_connected,
        }
        self._keystore.put(JOURNAL_NAME, json.dumps(data, separators=(",", ":")).encode())

    def append(self, event: LockEvent) -> LockEvent:
        """Number ``event`` (its ``seq`` is ignored) and keep it until acknowledged."""
        self.last_seq += 1
        numbered = replace(event, seq=self.last_seq)
        self.events.append(numbered)
        if len(self.events) > self._capacity:
            dropped = len(self.events) - self._capacity + 1
            first_kept = self.events[dropped]
            self.events = self.events[dropped:]
            self.events.insert(
                0,
                LockEvent(
                    seq=first_kept.seq - 1,
                    occurred_at=first_kept.occurred_at,
                    kind=EventKind.EVENTS_LOST,
                    reason=f"journal full: {dropped} unacknowledged entries dropped",
                ),
            )
        self._save()
        return numbered

    def mark_connected(self) -> bool:
        """Record that the lock was reached; returns whether it had been reached before."""
        before = self.ever_connected
        if not before:
            self.ever_connected = True
            self._save()
        return before

    def page(self, after_seq: int, limit: int) -> EventPage:
        events = [e for e in self.events if e.seq > after_seq][:limit]
        return EventPage(events, events[-1].seq if events else after_seq)

    def ack(self, up_to_seq: int) -> None:
        kept = [e for e in self.events if e.seq > up_to_seq]
        if len(kept) != len(self.events):
            self.events = kept
            self._save()
