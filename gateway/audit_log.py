"""A lock's audit log into the outbox: read from the stored cursor, record, then acknowledge.

Each page is recorded in the same transaction that moves the lock's cursor, and only then
acknowledged to the lock, so that neither a crash nor a power cut loses an entry or records one
twice (event ids ``<lock>:<seq>`` are unique in the outbox). Entries the gateway decided itself
(``decided_by == "gateway"``) are skipped: the validator recorded them when it decided.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.events import AccessEvent
from gateway.handle import LockOps
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
    recorded = 0
    while True:
        page = await driver.fetch_events(outbox.cursor(lock_id))
        if not page.events:
            return recorded
        events = []
        for e in page.events:
            if e.decided_by == "gateway":
                continue
            mid = e.credential_id or ""
            grant_id = grant_of.get(mid)
            user = users.get(grant_id) if grant_id else None
            events.append(AccessEvent.from_lock(lock_id, e, grant_id, user, said.get(mid)))
        added = await outbox.ingest_lock_events(lock_id, events, page.next_seq)
        recorded += added
        log.info(
            "%s: %d audit-log entries recorded, up to seq %d",
            lock_id,
            added,
            page.next_seq,
            extra={"lock": lock_id},
        )
        await driver.ack_events(page.next_seq)
