"""Small named values: data version, sync cursors, the time floor, the store key check."""

from __future__ import annotations

from gateway.store.db import Database


class Meta:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        row = self._db.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_int(self, key: str) -> int:
        value = self.get(key)
        return int(value) if value else 0

    def set(self, key: str, value: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def incr(self, key: str) -> int:
        with self._db.transaction():
            value = self.get_int(key) + 1
            self.set(key, str(value))
        return value
