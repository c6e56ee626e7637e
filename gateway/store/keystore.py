"""Long-term link secrets of drivers (commissioning keys), encrypted like every other secret.

Names are ``<lock_id>/<name>``. Lock ids are data: a lock's keys are found by an exact,
case-sensitive compare of the prefix, never by ``LIKE`` (where ``_`` is a wildcard and ASCII
case is ignored, so clearing ``door_1`` once wiped ``door-1``, ``DOOR_1`` and ``doorX1``).
"""

from __future__ import annotations

import sqlite3

from gateway.store.crypto import SecretBox
from gateway.store.db import Database


def delete_lock_keys(conn: sqlite3.Connection, lock_id: str) -> None:
    """Delete every key of exactly this lock (inside the caller's transaction)."""
    prefix = f"{lock_id}/"
    conn.execute(
        "DELETE FROM keystore WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
    )


class EncryptedKeyStore:
    """Implements :class:`drivers.base.KeyStore` for one lock: names are prefixed with its id."""

    def __init__(self, db: Database, box: SecretBox, lock_id: str) -> None:
        self._db = db
        self._box = box
        self._lock_id = lock_id
        self._prefix = f"{lock_id}/"

    def get(self, name: str) -> bytes | None:
        key = self._prefix + name
        row = self._db.conn.execute(
            "SELECT value_ct FROM keystore WHERE name = ?", (key,)
        ).fetchone()
        return None if row is None else self._box.open(row[0], key)

    def put(self, name: str, value: bytes) -> None:
        key = self._prefix + name
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO keystore VALUES (?, ?)", (key, self._box.seal(value, key))
            )

    def delete(self, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM keystore WHERE name = ?", (self._prefix + name,))

    def clear(self) -> None:
        with self._db.transaction() as conn:
            delete_lock_keys(conn, self._lock_id)
