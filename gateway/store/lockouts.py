"""Brute-force state per bucket: a lock's keypad, a lock's card reader, or the whole site's.

A bucket is ``(scope, kind)``: ``scope`` is a lock id or :data:`SITE`, ``kind`` a credential
kind (``code``, ``card``). It holds the recent failures (each with the access method it named,
if any, so that only that method's own success can take it back), the lockout in force, and
the escalation level with the time it was last raised (it decays from there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.store.db import Database
from gateway.store.timefmt import from_db, to_db

SITE = "*"
"""The scope of the site-wide budget (a lock id never starts with ``*``)."""


@dataclass(frozen=True, slots=True)
class Failure:
    at: datetime
    method_id: str | None = None
    """The access method the failed attempt named (revoked, outside its window, another
    entrance); ``None`` for a PIN or card nobody holds."""


@dataclass(slots=True)
class LockoutState:
    failures: list[Failure] = field(default_factory=list)
    locked_until: datetime | None = None
    level: int = 0
    level_at: datetime | None = None


def _copy(state: LockoutState) -> LockoutState:
    return replace(state, failures=list(state.failures))


class Lockouts:
    """The buckets, in the database and in memory: every state written in this run is also
    kept here and read from here, so a write the disk had no room for still counts (a full
    disk must not open the keypad to guessing); :meth:`flush` writes them again."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._latest: dict[tuple[str, str], LockoutState] = {}
        self._loaded: dict[tuple[str, str], LockoutState] = {}
        """States read from the database, kept so a decision costs no query (this class is
        the only writer of the table, and every write goes through :attr:`_latest` first)."""

    def get(self, scope: str, kind: str = "code") -> LockoutState:
        latest = self._latest.get((scope, kind)) or self._loaded.get((scope, kind))
        if latest is None:
            latest = self._loaded[(scope, kind)] = self._load(scope, kind)
        return _copy(latest)

    def _load(self, scope: str, kind: str) -> LockoutState:
        row = self._db.conn.execute(
            "SELECT failures, locked_until, level, level_at FROM lockout_buckets"
            " WHERE scope = ? AND kind = ?",
            (scope, kind),
        ).fetchone()
        if row is None:
            return LockoutState()
        failures = []
        for at, method_id in json.loads(row[0]):
            t = from_db(at)
            if t is not None:
                failures.append(Failure(t, method_id))
        return LockoutState(failures, from_db(row[1]), int(row[2]), from_db(row[3]))

    def put(self, scope: str, kind: str, state: LockoutState) -> None:
        self._latest[(scope, kind)] = _copy(state)
        self._write(scope, kind, state)

    def flush(self) -> None:
        """Write every state of this run again (after the disk was full)."""
        with self._db.transaction():
            for (scope, kind), state in self._latest.items():
                self._write(scope, kind, state)

    def _write(self, scope: str, kind: str, state: LockoutState) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO lockout_buckets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    scope,
                    kind,
                    json.dumps([[to_db(f.at), f.method_id] for f in state.failures]),
                    to_db(state.locked_until),
                    state.level,
                    to_db(state.level_at),
                ),
            )
