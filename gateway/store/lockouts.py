"""Keypad brute-force state per lock: recent failures, the lockout in force, its level."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from gateway.store.db import Database
from gateway.store.timefmt import from_db, to_db


@dataclass(slots=True)
class LockoutState:
    failures: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None
    level: int = 0


class Lockouts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, lock_id: str) -> LockoutState:
        row = self._db.conn.execute(
            "SELECT failures, locked_until, level FROM lockouts WHERE lock_id = ?", (lock_id,)
        ).fetchone()
        if row is None:
            return LockoutState()
        failures = [t for t in (from_db(v) for v in json.loads(row[0])) if t is not None]
        return LockoutState(failures, from_db(row[1]), int(row[2]))

    def put(self, lock_id: str, state: LockoutState) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lockouts VALUES (?, ?, ?, ?)",
                (
                    lock_id,
                    json.dumps([to_db(t) for t in state.failures]),
                    to_db(state.locked_until),
                    state.level,
                ),
            )
