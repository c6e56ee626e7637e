"""Small named values: data version, sync cursors, the time floor, the store key check."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping

from gateway.store.db import Database

DATA_VERSION = "data_version"

_RAISE = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
    " SET value = excluded.value"
    " WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)"
)


class Meta:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.data_version = DataVersion(db)

    def get(self, key: str) -> str | None:
        row = self._db.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_int(self, key: str) -> int:
        value = self.get(key)
        return int(value) if value else 0

    def set(self, key: str, value: str) -> None:
        if key == DATA_VERSION:
            raise ValueError("the data version moves only through DataVersion.bump")
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    async def save(self, key: str, value: str) -> None:
        """:meth:`set` for a task on the event loop: returns once committed; while a bulk write
        holds the database it waits without holding the loop (see :meth:`Database.write`)."""
        if key == DATA_VERSION:
            raise ValueError("the data version moves only through DataVersion.bump")
        await self._db.write(
            lambda conn: conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        )

    async def raise_to(self, values: Mapping[str, int]) -> None:
        """Raise each named integer to at least its value (none ever goes down), in one
        durable commit made in the store's writer thread (:meth:`Database.write_behind`):
        returns once committed, while the event loop goes on (the commit waits for the disk,
        and for a bulk write that holds the database, off the loop). Raises
        :class:`~gateway.store.db.StoreFullError` if the disk had no room (nothing changed)."""
        if DATA_VERSION in values:
            raise ValueError("the data version moves only through DataVersion.bump")
        rows = [(key, str(value)) for key, value in values.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_RAISE, rows)

        done = self._db.write_behind(write)
        await asyncio.wait([asyncio.wrap_future(done)])
        self._db.settled(done)

    def incr(self, key: str) -> int:
        with self._db.transaction():
            value = self.get_int(key) + 1
            self.set(key, str(value))
        return value


class DataVersion:
    """The version of the cloud data, known in memory so a decision costs no query to learn it.

    It rises with every committed change to the cloud data (:meth:`bump`, inside the writing
    transaction) and caches of that data compare it. The value in memory moves only once the
    change has committed (a cache built meanwhile from the older rows must not be taken for the
    new version), and while a bulk write runs on the other connection, whose commit becomes
    visible before this thread hears of it, :attr:`current` reads the committed value from the
    database instead: a decision never runs on data older than what is committed. This process
    is the only writer of the cloud data (the daemon); another process's change would not be
    seen here until this one bumps the version again.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._value = _read(db.conn)

    @property
    def current(self) -> int:
        if self._db.writing_elsewhere:
            return _read(self._db.conn)
        return self._value

    def bump(self, conn: sqlite3.Connection) -> int:
        """Raise the version in the transaction open on ``conn`` (the store's connection or a
        bulk write's); :attr:`current` says so once it has committed. Returns the new value."""
        value = _read(conn) + 1
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (DATA_VERSION, str(value)))
        self._db.after_commit(conn, lambda: self._committed(value))
        return value

    def _committed(self, value: int) -> None:
        self._value = max(self._value, value)


def _read(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (DATA_VERSION,)).fetchone()
    return int(row[0]) if row is not None and row[0] else 0
