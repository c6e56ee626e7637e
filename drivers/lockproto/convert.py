"""Between the driver contract's types (:mod:`drivers.base`) and the wire records.

Both sides use it: the gateway's :mod:`~drivers.lockproto.lockclient` and the simulated lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from drivers.base import (
    BoltState,
    Credential,
    CredentialKind,
    EventKind,
    LockEvent,
    StoredCredential,
    TimeWindow,
)
from drivers.lockproto.records import (
    MAX_REASON_LEN,
    CredentialRecord,
    DecidedBy,
    EventRecord,
    WireBolt,
    WireEvent,
    WireKind,
    clip,
)

U32_MAX = 2**32 - 1

KIND_TO_WIRE = {
    CredentialKind.CODE: WireKind.CODE,
    CredentialKind.CARD: WireKind.CARD,
    CredentialKind.MOBILE_KEY: WireKind.MOBILE_KEY,
}
WIRE_TO_KIND = {v: k for k, v in KIND_TO_WIRE.items()}
BOLT_TO_WIRE = {
    BoltState.UNKNOWN: WireBolt.UNKNOWN,
    BoltState.LOCKED: WireBolt.LOCKED,
    BoltState.UNLOCKED: WireBolt.UNLOCKED,
    BoltState.JAMMED: WireBolt.JAMMED,
}
WIRE_TO_BOLT = {v: k for k, v in BOLT_TO_WIRE.items()}
# Kinds the gateway records but no lock sends (events_lost: a gap another driver noticed; the
# health of OSDP readers) have no wire value.
EVENT_TO_WIRE = {
    kind: WireEvent[kind.name] for kind in EventKind if kind.name in WireEvent.__members__
}
WIRE_TO_EVENT = {v: k for k, v in EVENT_TO_WIRE.items()}
DECIDED_TO_WIRE = {None: DecidedBy.NONE, "lock": DecidedBy.LOCK, "gateway": DecidedBy.GATEWAY}
WIRE_TO_DECIDED = {v: k for k, v in DECIDED_TO_WIRE.items()}


def to_unix(t: datetime) -> int:
    """Whole seconds since 1970 UTC, clamped into u32."""
    return max(0, min(U32_MAX, int(t.timestamp())))


def from_unix(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def window_to_wire(window: TimeWindow | None) -> tuple[int | None, int | None]:
    """A window end past 2106 is sent as open; a start before 1970 likewise."""
    if window is None:
        return None, None
    starts = ends = None
    if window.starts_at is not None and window.starts_at.timestamp() > 0:
        starts = to_unix(window.starts_at)
    if window.ends_at is not None and window.ends_at.timestamp() < U32_MAX:
        ends = to_unix(window.ends_at)
    return starts, ends


def window_from_wire(starts: int | None, ends: int | None) -> TimeWindow | None:
    if starts is None and ends is None:
        return None
    return TimeWindow(
        from_unix(starts) if starts is not None else None,
        from_unix(ends) if ends is not None else None,
    )


def credential_to_record(cred: Credential) -> CredentialRecord:
    starts, ends = window_to_wire(cred.window)
    return CredentialRecord(
        KIND_TO_WIRE[cred.kind], cred.credential_id, cred.tag, cred.secret, starts, ends
    )


def record_to_stored(rec: CredentialRecord) -> StoredCredential:
    return StoredCredential(
        rec.credential_id,
        WIRE_TO_KIND[WireKind(rec.kind)],
        rec.tag,
        window_from_wire(rec.starts, rec.ends),
    )


def stored_to_record(cred: StoredCredential) -> CredentialRecord:
    starts, ends = window_to_wire(cred.window)
    return CredentialRecord(
        KIND_TO_WIRE[cred.kind], cred.credential_id, cred.tag, None, starts, ends
    )


def event_to_record(event: LockEvent) -> EventRecord:
    return EventRecord(
        seq=event.seq,
        at=to_unix(event.occurred_at),
        kind=EVENT_TO_WIRE[event.kind],
        credential_kind=KIND_TO_WIRE[event.credential_kind] if event.credential_kind else 0,
        decided_by=DECIDED_TO_WIRE.get(event.decided_by, DecidedBy.NONE),
        credential_id=event.credential_id or "",
        reason=clip(event.reason or "", MAX_REASON_LEN),
    )


def record_to_event(rec: EventRecord) -> LockEvent:
    return LockEvent(
        seq=rec.seq,
        occurred_at=from_unix(rec.at),
        kind=WIRE_TO_EVENT[WireEvent(rec.kind)],
        credential_kind=WIRE_TO_KIND[WireKind(rec.credential_kind)]
        if rec.credential_kind
        else None,
        credential_id=rec.credential_id or None,
        reason=rec.reason or None,
        decided_by=WIRE_TO_DECIDED[DecidedBy(rec.decided_by)],
    )
