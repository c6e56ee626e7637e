"""Per (lock, credential) sync state: what the gateway wants on each lock and how far it got.

States: ``scheduled`` (due later, or waiting for Seam: ``error_code`` ``not_issued``),
``pending`` (to be put), ``applied`` (on the lock, read back), ``shared`` (the same user's same
code is on the lock through another access method's slot, named in ``error``), ``removing`` (to
be taken off), ``failed`` (with a machine-readable ``error_code``, a message and the attempt
count). An ``applied`` or ``pending`` row may carry a note in ``error_code``/``error``: another
user's grant refused the same code (``duplicate_code_on_device``), or Seam's own error or
warning on the method. A row disappears once its credential is off the lock and no longer
wanted.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.store.db import Database
from gateway.store.timefmt import from_db, to_db


class SyncStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    PENDING = "pending"
    APPLIED = "applied"
    REMOVING = "removing"
    FAILED = "failed"
    SHARED = "shared"


@dataclass(frozen=True, slots=True)
class CredentialSyncState:
    lock_id: str
    method_id: str
    state: SyncStatus
    tag: bytes | None = None
    error_code: str | None = None
    error: str | None = None
    attempts: int = 0
    updated_at: datetime | None = None


class SyncStates:
    def __init__(self, db: Database) -> None:
        self._db = db

    def for_lock(self, lock_id: str) -> dict[str, CredentialSyncState]:
        rows = self._db.conn.execute("SELECT * FROM lock_credentials WHERE lock_id = ?", (lock_id,))
        return {r["method_id"]: _row(r) for r in rows}

    def for_methods(self, method_ids: Iterable[str]) -> list[CredentialSyncState]:
        ids = list(method_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.conn.execute(
            f"SELECT * FROM lock_credentials WHERE method_id IN ({marks})"  # noqa: S608
            " ORDER BY lock_id, method_id",
            ids,
        )
        return [_row(r) for r in rows]

    def write(self, states: Iterable[CredentialSyncState], now: datetime) -> None:
        with self._db.transaction() as conn:
            _insert(conn, states, now)

    async def write_many(self, states: Sequence[CredentialSyncState], now: datetime) -> None:
        """:meth:`write`, off the event loop: in a worker thread on the store's bulk
        connection. A lock's first pass writes thousands of rows, twice; and a write on the
        loop's own connection while a bulk write (a full snapshot) holds the database would
        wait for it there, holding the loop. The rows are staged first, without the write
        lock, and moved in by one statement (see :meth:`Database.bulk_write`)."""
        rows = list(states)

        def stage(conn: sqlite3.Connection) -> None:
            conn.execute(
                "CREATE TEMP TABLE staged_states AS SELECT * FROM main.lock_credentials WHERE 0"
            )
            _insert(conn, rows, now, "temp.staged_states")

        await self._db.bulk_write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO lock_credentials SELECT * FROM temp.staged_states"
            ),
            prepare=stage,
        )

    def remove(self, lock_id: str, method_ids: Iterable[str]) -> None:
        with self._db.transaction() as conn:
            _delete(conn, lock_id, method_ids)

    async def remove_many(self, lock_id: str, method_ids: Sequence[str]) -> None:
        """:meth:`remove`, off the event loop (see :meth:`write_many`)."""
        ids = list(method_ids)

        def stage(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TEMP TABLE staged_ids (id TEXT PRIMARY KEY)")
            conn.executemany(
                "INSERT OR IGNORE INTO temp.staged_ids VALUES (?)", ((i,) for i in ids)
            )

        await self._db.bulk_write(
            lambda conn: conn.execute(
                "DELETE FROM lock_credentials"
                " WHERE lock_id = ? AND method_id IN (SELECT id FROM temp.staged_ids)",
                (lock_id,),
            ),
            prepare=stage,
        )

    def remove_lock(self, lock_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM lock_credentials WHERE lock_id = ?", (lock_id,))

    def counts(self, lock_id: str) -> dict[str, int]:
        rows = self._db.conn.execute(
            "SELECT state, COUNT(*) FROM lock_credentials WHERE lock_id = ? GROUP BY state",
            (lock_id,),
        )
        counts = dict(_NO_COUNTS)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts


_NO_COUNTS = {s.value: 0 for s in SyncStatus}
"""Every state, none counted (made once: an enum member's ``value`` is a slow read)."""


def _insert(
    conn: sqlite3.Connection,
    states: Iterable[CredentialSyncState],
    now: datetime,
    table: str = "lock_credentials",
) -> None:
    stamp = to_db(now)
    conn.executemany(
        f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            (s.lock_id, s.method_id, s.state.value, s.tag, s.error_code, s.error, s.attempts, stamp)
            for s in states
        ),
    )


def _delete(conn: sqlite3.Connection, lock_id: str, method_ids: Iterable[str]) -> None:
    conn.executemany(
        "DELETE FROM lock_credentials WHERE lock_id = ? AND method_id = ?",
        ((lock_id, m) for m in method_ids),
    )


def _row(row: sqlite3.Row) -> CredentialSyncState:
    return CredentialSyncState(
        lock_id=row["lock_id"],
        method_id=row["method_id"],
        state=SyncStatus(row["state"]),
        tag=row["tag"],
        error_code=row["error_code"],
        error=row["error"],
        attempts=int(row["attempts"]),
        updated_at=from_db(row["updated_at"]),
    )
