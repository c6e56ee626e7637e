"""Brute-force state per bucket: a lock's keypad, a lock's card reader, or the whole site's.

A bucket is ``(scope, kind)``: ``scope`` is a lock id or :data:`SITE`, ``kind`` a credential
kind (``code``, ``card``). It holds the recent failures (each with the access method it named,
if any, so that only that method's own success can take it back), the lockout in force, and
the escalation level with the time it was last raised (it decays from there).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from gateway.store.db import Database
from gateway.store.timefmt import from_db, to_db

_encode = msgspec.json.Encoder().encode
"""The failures as JSON text (what ``json.loads`` reads back): a few times faster than
``json.dumps``, in the store's writing thread, for every bucket a group of decisions changed."""

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
    # not dataclasses.replace: a tenth of its time, and a failed guess makes four copies
    return LockoutState(list(state.failures), state.locked_until, state.level, state.level_at)


class Lockouts:
    """The buckets, in memory and in the database. A change is made in memory at once (the
    next decision counts it) and marked for the next write of recorded decisions
    (:class:`~gateway.store.decision_log.DecisionLog`), which commits it with the decision that
    made it: a write the disk had no room for still counts (a full disk must not open the
    keypad to guessing), and stays marked until a write succeeds."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._latest: dict[tuple[str, str], LockoutState] = {}
        self._loaded: dict[tuple[str, str], LockoutState] = {}
        """States read from the database, kept so a decision costs no query (this class is
        the only writer of the table, and every write goes through :attr:`_latest` first)."""
        self._unwritten: set[tuple[str, str]] = set()
        row = db.conn.execute("SELECT MAX(locked_until) FROM lockout_buckets").fetchone()
        self._named = {
            (scope, kind)
            for scope, kind, failures in db.conn.execute(
                "SELECT scope, kind, failures FROM lockout_buckets"
            )
            if any(method_id is not None for _, method_id in json.loads(failures))
        }
        """The buckets whose failures name an access method (a superset: kept on every
        :meth:`put`): a success looks for failures to take back only in these, so the usual
        success (nobody failed with that method) reads no bucket."""
        self.no_lockout_from: datetime | None = from_db(row[0])
        """No bucket is locked out at or after this time (``None``: none ever was): a bound
        that only rises, so a decision after it needs no bucket read. A lockout that ended
        early leaves it where it was; then the buckets are read as before."""

    def get(self, scope: str, kind: str = "code") -> LockoutState:
        return _copy(self._state(scope, kind))

    def peek(self, scope: str, kind: str) -> LockoutState:
        """The bucket's state itself, not a copy: to read, never to change (a new state goes
        in through :meth:`put` or :meth:`adopt`)."""
        return self._state(scope, kind)

    def locked_until(self, scope: str, kind: str) -> datetime | None:
        """The end of the bucket's last lockout (a read on every decision: nothing copied)."""
        key = (scope, kind)
        state = self._latest.get(key) or self._loaded.get(key) or self._state(scope, kind)
        return state.locked_until

    def names(self, scope: str, kind: str, method_id: str) -> bool:
        """Whether a failure counted in the bucket named this access method."""
        if (scope, kind) not in self._named:
            return False
        failures = self._state(scope, kind).failures
        return bool(failures) and any(f.method_id == method_id for f in failures)

    def names_any(self) -> bool:
        """Whether a failure counted in any bucket may name an access method (if not, no
        success has a failure to take back)."""
        return bool(self._named)

    def _state(self, scope: str, kind: str) -> LockoutState:
        key = (scope, kind)
        latest = self._latest.get(key) or self._loaded.get(key)
        if latest is None:
            latest = self._loaded[key] = self._load(scope, kind)
        return latest

    def _load(self, scope: str, kind: str) -> LockoutState:
        row = self._db.conn.execute(
            "SELECT failures, locked_until, level, level_at FROM lockout_buckets"
            " WHERE scope = ? AND kind = ?",
            (scope, str(kind)),
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
        """The bucket's new state: in force now, written with the next recorded decisions."""
        self.adopt(scope, str(kind), _copy(state))

    def adopt(self, scope: str, kind: str, state: LockoutState) -> None:
        """:meth:`put` without the copy, for a state nobody else holds or will change (a
        failure counted builds a new one): the states kept here are never changed in place,
        so the writing thread can be handed them as they are."""
        key = (scope, kind)
        until = state.locked_until
        if until is not None and (self.no_lockout_from is None or until > self.no_lockout_from):
            self.no_lockout_from = until
        self._latest[key] = state
        self._unwritten.add(key)
        if any(f.method_id is not None for f in state.failures):
            self._named.add(key)
        else:
            self._named.discard(key)

    def flush(self) -> None:
        """Write every state of this run again with the next write (after the disk was full)."""
        self._unwritten.update(self._latest)

    def take_unwritten(self) -> list[tuple[str, str, LockoutState]]:
        """The states changed since the last :meth:`take_unwritten`, as they are now (for a
        write in another thread: a state kept here is never changed in place, a change
        replaces it); give them back with :meth:`not_written` if their write fails."""
        latest = self._latest
        taken = [(scope, kind, latest[(scope, kind)]) for scope, kind in sorted(self._unwritten)]
        self._unwritten.clear()
        return taken

    def not_written(self, states: list[tuple[str, str, LockoutState]]) -> None:
        self._unwritten.update((scope, kind) for scope, kind, _ in states)

    @staticmethod
    def write(conn: sqlite3.Connection, states: list[tuple[str, str, LockoutState]]) -> None:
        """Write these states (inside the caller's transaction, on its connection)."""
        conn.executemany(
            "INSERT OR REPLACE INTO lockout_buckets VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    scope,
                    kind,
                    _encode([[to_db(f.at), f.method_id] for f in state.failures]).decode(),
                    to_db(state.locked_until),
                    state.level,
                    to_db(state.level_at),
                )
                for scope, kind, state in states
            ],
        )
