"""A lock's audit log into the outbox: read from the stored cursor, record, then acknowledge.

Each page is recorded in the same transaction that moves the lock's cursor, and only then
acknowledged to the lock, so that neither a crash nor a power cut loses an entry or records one
twice (event ids ``<lock>:<seq>`` are unique in the outbox). Entries the gateway decided itself
(``decided_by == "gateway"``) are skipped: the validator recorded them when it decided.

Before reading, the log the driver names (:meth:`~drivers.base.LockDriver.log_origin`) is
checked against the one the cursor counts in (:mod:`gateway.log_epochs`): another log is read
from its start as a new epoch, the change kept (durably, before any of it is read: a crash
then reads it from the start again) and told at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.events import AccessEvent
from gateway.handle import LockOps
from gateway.log_epochs import NEW_LOG, LogChange, follow, new_log, went_back
from gateway.store.lock_logs import LogPosition
from gateway.store.outbox import Outbox


async def collect_audit_log(
    driver: LockOps,
    outbox: Outbox,
    grant_of: dict[str, str],
    log: logging.Logger,
    user_of: Mapping[str, str | None] | None = None,
    *,
    notes: Mapping[str, str] | None = None,
) -> int:
    """Pull every new entry of the lock (in its session); returns how many were recorded.

    ``grant_of`` names each access method's grant, ``user_of`` each grant's user identity:
    a lock's log names only the credential (a keypad code's id), the event names all three.
    ``notes`` (method -> sentence) says what else to tell about an entry of that method."""
    users = user_of or {}
    said = notes or {}
    lock_id = driver.lock_id
    at = await _position(driver, outbox, log)
    recorded = 0
    first = True
    while True:
        page = await driver.fetch_events(at.seq)
        if not page.events:
            if first and at.seq > 0 and went_back(at, await driver.log_head()):
                fresh = new_log(at, at.origin)
                at = await _keep(outbox, lock_id, at, fresh, LogChange.WENT_BACK, log)
                first = False
                continue
            return recorded
        first = False
        events = []
        for e in page.events:
            if e.decided_by == "gateway":
                continue
            mid = e.credential_id or ""
            grant_id = grant_of.get(mid)
            user = users.get(grant_id) if grant_id else None
            events.append(
                AccessEvent.from_lock(lock_id, e, grant_id, user, said.get(mid), at.epoch)
            )
        added = await outbox.ingest_lock_events(lock_id, events, page.next_seq)
        at = LogPosition(at.origin, at.epoch, page.next_seq)
        recorded += added
        log.info(
            "%s: %d audit-log entries recorded, up to seq %d",
            lock_id,
            added,
            page.next_seq,
            extra={"lock": lock_id},
        )
        await driver.ack_events(page.next_seq)


async def _position(driver: LockOps, outbox: Outbox, log: logging.Logger) -> LogPosition:
    """Where this read starts: the kept position, or a new log's start (kept first)."""
    kept = outbox.logs.position(driver.lock_id)
    position, change = follow(kept, await driver.log_origin())
    if change is LogChange.SAME:
        return position
    return await _keep(outbox, driver.lock_id, kept, position, change, log)


async def _keep(
    outbox: Outbox,
    lock_id: str,
    kept: LogPosition | None,
    position: LogPosition,
    change: LogChange,
    log: logging.Logger,
) -> LogPosition:
    await outbox.logs.move(lock_id, position)
    if change in NEW_LOG:
        assert kept is not None
        log.warning(
            "%s: its audit log is another one now (%s: origin %s, was %s, newest seq read %d):"
            " reading it from the start as log epoch %d",
            lock_id,
            change.value,
            position.origin,
            kept.origin,
            kept.seq,
            position.epoch,
            extra={"lock": lock_id},
        )
    else:
        log.debug("%s: audit log %s (origin %s)", lock_id, change.value, position.origin)
    return position
