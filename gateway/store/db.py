"""Open the SQLite database, apply migrations, hand out transactions.

WAL journal with ``synchronous=FULL``: a committed transaction survives a power cut, and a
``kill -9`` at any moment leaves the last committed state. Every write goes through
:meth:`Database.transaction`, so a change is all there or not there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.store.schema import MIGRATIONS


class StoreError(Exception):
    """The database cannot be used (newer schema than this code, corrupt file)."""


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self._depth = 0
        self.migrated_from = self._migrate()

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> int:
        start = self.schema_version
        if start > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {start}, newer than this Lockgate "
                f"understands ({len(MIGRATIONS)}); upgrade Lockgate or restore a backup"
            )
        for version in range(start, len(MIGRATIONS)):
            with self.transaction() as conn:
                # Statement by statement: executescript() would commit the open transaction.
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version + 1}")
        return start

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
