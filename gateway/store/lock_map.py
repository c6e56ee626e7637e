"""The lock ↔ space / entrance / device map, as configured at the last start.

The config is the source; the store keeps a copy so that what a lock served is on record with
its sync state, and so that locks dropped from the config are noticed and their state cleared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.store import lock_logs
from gateway.store.db import Database
from gateway.store.keystore import delete_lock_keys
from gateway.store.timefmt import to_db


@dataclass(frozen=True, slots=True)
class LockRecord:
    lock_id: str
    driver_type: str
    space_ids: frozenset[str]
    entrance_ids: frozenset[str]
    device_ids: frozenset[str]


class LockMap:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> dict[str, LockRecord]:
        rows = self._db.conn.execute("SELECT * FROM locks ORDER BY lock_id")
        return {
            r["lock_id"]: LockRecord(
                r["lock_id"],
                r["driver_type"],
                frozenset(json.loads(r["space_ids"])),
                frozenset(json.loads(r["entrance_ids"])),
                frozenset(json.loads(r["device_ids"])),
            )
            for r in rows
        }

    def replace(self, locks: Iterable[LockRecord], now: datetime) -> list[str]:
        """Record the configured locks; returns the ids of locks no longer configured, whose
        sync state and link keys are cleared, and audit logs forgotten, in the same
        transaction."""
        locks = list(locks)
        keep = {lock.lock_id for lock in locks}
        with self._db.transaction() as conn:
            gone = [lid for lid in self.all() if lid not in keep]
            for lid in gone:
                conn.execute("DELETE FROM locks WHERE lock_id = ?", (lid,))
                conn.execute("DELETE FROM lock_credentials WHERE lock_id = ?", (lid,))
                delete_lock_keys(conn, lid)
                lock_logs.forget(conn, lid)
            conn.executemany(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        lock.lock_id,
                        lock.driver_type,
                        json.dumps(sorted(lock.space_ids)),
                        json.dumps(sorted(lock.entrance_ids)),
                        json.dumps(sorted(lock.device_ids)),
                        to_db(now),
                    )
                    for lock in locks
                ],
            )
        return gone

    def remove(self, lock_id: str) -> None:
        """The lock is no longer served: its record goes and its audit log is forgotten
        (:func:`gateway.store.lock_logs.forget`; the caller deletes its link keys with it)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM locks WHERE lock_id = ?", (lock_id,))
            lock_logs.forget(conn, lock_id)
