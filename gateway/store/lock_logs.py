"""Each lock's audit-log cursor, and which log it counts in (table ``lock_cursors``).

One row per lock id whose log was ever read: ``event_seq`` (the cursor: every entry up to it
is in the outbox), ``origin`` (what the driver said identifies the log: ``NULL`` when it
said nothing, or before migration 6), ``epoch`` (the log's number among the logs read under
this lock id: ``0`` for the first one, whose event ids are ``<lock>:<seq>`` as ever) and
``forgotten`` (the gateway forgot the lock since it last read it: removed at runtime or
dropped from the config, its link keys deleted with it). A row is never deleted, so a lock
id's epoch only grows and no later log can take an earlier log's event ids.

Which position a read starts from is :func:`gateway.log_epochs.follow`'s rule; this module
only keeps it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.store.db import Database


@dataclass(frozen=True, slots=True)
class LogPosition:
    origin: str | None
    epoch: int
    seq: int
    forgotten: bool = False


def advance(conn: sqlite3.Connection, lock_id: str, seq: int) -> None:
    """Move the cursor (in the caller's transaction, with the events it covers)."""
    conn.execute(
        "INSERT INTO lock_cursors (lock_id, event_seq) VALUES (?, ?)"
        " ON CONFLICT (lock_id) DO UPDATE SET event_seq = excluded.event_seq",
        (lock_id, seq),
    )


def forget(conn: sqlite3.Connection, lock_id: str) -> None:
    """The gateway forgets the lock (in the caller's transaction, with its link keys): the
    next log read under this id is a new one unless its origin proves it is the same."""
    conn.execute("UPDATE lock_cursors SET forgotten = 1 WHERE lock_id = ?", (lock_id,))


class LockLogs:
    def __init__(self, db: Database) -> None:
        self._db = db

    def position(self, lock_id: str) -> LogPosition | None:
        row = self._db.conn.execute(
            "SELECT origin, epoch, event_seq, forgotten FROM lock_cursors WHERE lock_id = ?",
            (lock_id,),
        ).fetchone()
        if row is None:
            return None
        return LogPosition(row[0], int(row[1]), int(row[2]), bool(row[3]))

    async def move(self, lock_id: str, position: LogPosition) -> None:
        """Keep ``position`` (origin, epoch and cursor in one durable transaction)."""
        values = (
            lock_id,
            position.seq,
            position.origin,
            position.epoch,
            int(position.forgotten),
        )
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO lock_cursors"
                " (lock_id, event_seq, origin, epoch, forgotten) VALUES (?, ?, ?, ?, ?)",
                values,
            )
        )
