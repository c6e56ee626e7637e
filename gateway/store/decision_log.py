"""Recorded decisions, committed in groups: the access events and the lockout states they
changed, in one ``synchronous=FULL`` transaction per group.

A decision is made (and counted against the lockout, in memory) at once; its event, already
turned into its outbox row, waits here for the next commit. One commit is under way at a time,
in a thread of the store's own (:meth:`~gateway.store.db.Database.write_behind`), while the
event loop goes on deciding. That thread cuts the groups itself: as a commit ends it takes
everything queued meanwhile and begins the next one at once, and only then lets the event loop
know the first is durable. So the disk is kept busy with no turn through the event loop between
two commits (measured: that turn, waking the loop, answering and queueing the next write, then
the thread waiting for the interpreter lock, was a third of each cycle).

Whoever recorded a decision learns it is durable only when its group has committed, so a door
is answered after that, never before: a decision answered ``granted`` is in the store, and a
failed guess is counted on disk before the guesser learns it failed. Every write of this log
goes through that one thread, in order, so a group's lockout states never land after a newer
group's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.events import AccessEvent
from gateway.store.db import Database
from gateway.store.lockouts import Lockouts, LockoutState
from gateway.store.outbox import Outbox

_Done = concurrent.futures.Future[None]
_States = list[tuple[str, str, LockoutState]]


@dataclass(slots=True)
class _Part:
    """One :meth:`DecisionLog.record` call's share of a group: plain data the writing thread
    may read, and who waits for it."""

    rows: list[tuple[str, str | None, str | None, str]]
    states: _States
    """The lockout states changed since the previous part was queued (copies)."""
    waiter: asyncio.Future[None] | concurrent.futures.Future[_Done]
    """A coroutine's future (settled on the event loop), or, for :meth:`record_now`, a
    future the writing thread hands the commit's outcome to."""


class DecisionLog:
    def __init__(self, db: Database, outbox: Outbox, lockouts: Lockouts) -> None:
        self._db = db
        self._outbox = outbox
        self._lockouts = lockouts
        self._lock = threading.Lock()
        self._queued: list[_Part] = []
        """What the next group takes (under :attr:`_lock`: the writing thread cuts it)."""
        self._writing = False
        """A write is queued or under way (under :attr:`_lock`): it takes what is queued
        when it ends, so nobody else starts one."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.groups = 0
        """Commits made (for benches and tests: decisions recorded / groups = group size)."""

    async def record(self, events: Sequence[AccessEvent]) -> None:
        """Record ``events`` with every lockout change made so far; returns once they are
        durable. Raises :class:`~gateway.store.db.StoreFullError` if the disk had no room
        (the lockout changes stay in memory and go with the next write)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        waiter = loop.create_future()
        self._queue(_Part(Outbox.rows(events), self._lockouts.take_unwritten(), waiter))
        # A caller that gives up cancels only its own waiter: the group commits all the same.
        await waiter

    def record_now(self, events: Sequence[AccessEvent]) -> None:
        """:meth:`record`, waiting here (the calling thread blocks for the commit): for callers
        that cannot await. It commits after the groups queued before it, with the decisions
        queued along with it."""
        states = self._lockouts.take_unwritten()
        waiter: concurrent.futures.Future[_Done] = concurrent.futures.Future()
        self._queue(_Part(Outbox.rows(events), states, waiter))
        failure = self._settled(waiter.result(), [states], bool(events))
        if failure is not None:
            raise failure

    def _queue(self, part: _Part) -> None:
        with self._lock:
            self._queued.append(part)
            if self._writing:
                return  # the write under way takes it when it ends
            self._writing = True
        self._write_next()

    def _write_next(self) -> None:
        """Queue the write of the next group (on either thread; :attr:`_writing` is set)."""
        taken: list[_Part] = []

        def write(conn: sqlite3.Connection) -> None:
            with self._lock:
                taken.extend(self._queued)
                self._queued.clear()
            _write(conn, taken)

        try:
            done = self._db.write_behind(write)
        except RuntimeError as err:  # the store is closed
            failed: _Done = concurrent.futures.Future()
            failed.set_exception(err)
            with self._lock:
                taken.extend(self._queued)
                self._queued.clear()
                self._writing = False
            self._finished(taken, failed)
            return
        done.add_done_callback(lambda done: self._written(taken, done))

    def _written(self, taken: list[_Part], done: _Done) -> None:
        """In the writing thread, as a group's commit ends: start the next group at once if
        anything is queued, then tell the group's waiters."""
        self.groups += 1
        with self._lock:
            more = bool(self._queued)
            if not more:
                self._writing = False
        if more:
            self._write_next()
        self._finished(taken, done)

    def _finished(self, taken: list[_Part], done: _Done) -> None:
        """Hand a group's outcome to its waiters: a blocked :meth:`record_now` at once, the
        others on the event loop."""
        on_loop: list[_Part] = []
        for part in taken:
            if isinstance(part.waiter, concurrent.futures.Future):
                part.waiter.set_result(done)
            else:
                on_loop.append(part)
        if on_loop and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits now
                self._loop.call_soon_threadsafe(self._settle, on_loop, done)

    def _settle(self, parts: list[_Part], done: _Done) -> None:
        """On the event loop: tell the waiters how their commit went."""
        failure = self._settled(
            done, [part.states for part in parts], any(part.rows for part in parts)
        )
        for part in parts:
            waiter = part.waiter
            assert isinstance(waiter, asyncio.Future)
            if waiter.done():
                continue
            if failure is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(failure)
                waiter.exception()  # retrieved: a waiter whose caller left must not warn

    def _settled(
        self, done: _Done, states: list[_States], added: bool
    ) -> BaseException | None:
        """What a commit came to, on the calling thread (the store's state of a full disk
        lives there): ``None`` if it committed; else the failure, with the lockout states
        it held marked unwritten again."""
        try:
            self._db.settled(done)
        except Exception as err:
            for s in states:
                self._lockouts.not_written(s)
            return err
        if added:
            self._outbox.changed.set()
        return None


def _write(conn: sqlite3.Connection, parts: list[_Part]) -> None:
    """One group's transaction, in the writing thread: every lockout state in the order they
    changed (the newest of a bucket lands last), then the events."""
    for part in parts:
        if part.states:
            Lockouts.write(conn, part.states)
    rows = [row for part in parts for row in part.rows]
    if rows:
        Outbox.insert(conn, rows)
