"""Recorded decisions, committed in groups: the access events and the lockout states they
changed, in one ``synchronous=FULL`` transaction per group.

A decision is made (and counted against the lockout, in memory) at once; its event waits here
for the next commit. One commit is under way at a time, in a thread of the store's own
(:meth:`~gateway.store.db.Database.write_behind`), while the event loop goes on deciding: what
arrives meanwhile goes into the next group. When a commit ends and fewer decisions wait than
doors it answered, the next commit waits one turn of the loop, for what the answered doors
decide at once (a door that asks again as soon as it is answered): one commit for them all,
not one for the few and another for the many. Whoever recorded a decision learns it is durable
only when its group has committed, so a door is answered after that, never before: a decision
answered ``granted`` is in the store, and a failed guess is counted on disk before the guesser
learns it failed. Every write of this log goes through that one thread, in order, so a group's
lockout states never land after a newer group's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.events import AccessEvent
from gateway.store.db import Database
from gateway.store.lockouts import Lockouts, LockoutState
from gateway.store.outbox import Outbox

_Future = asyncio.Future
_running_loop = asyncio.get_running_loop


@dataclass(slots=True)
class _Group:
    events: list[AccessEvent] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class DecisionLog:
    def __init__(self, db: Database, outbox: Outbox, lockouts: Lockouts) -> None:
        self._db = db
        self._outbox = outbox
        self._lockouts = lockouts
        self._next = _Group()
        self._in_flight = False
        self.groups = 0
        """Commits made (for benches and tests: decisions recorded / groups = group size)."""

    def record(self, events: Sequence[AccessEvent]) -> asyncio.Future[None]:
        """Record ``events`` with every lockout change made so far; await what this returns
        to learn they are durable. It raises :class:`~gateway.store.db.StoreFullError` if
        the disk had no room (the lockout changes stay in memory and go with the next
        write). A future, not a coroutine: one frame fewer to resume on every decision. A
        caller that gives up cancels only its own future: the group commits all the same."""
        waiter: asyncio.Future[None] = _Future(loop=_running_loop())  # no create_future frame
        group = self._next
        group.events.extend(events)
        group.waiters.append(waiter)
        if not self._in_flight:
            self._commit_next()
        return waiter

    def record_now(self, events: Sequence[AccessEvent]) -> None:
        """:meth:`record`, waiting here (the calling thread blocks for the commit): for callers
        that cannot await. It commits after the groups queued before it, and takes the
        decisions waiting for the next group along."""
        group, self._next = self._next, _Group()
        group.events.extend(events)
        states = self._lockouts.take_unwritten()
        done = self._db.write_behind(_writer(group.events, states))
        concurrent.futures.wait([done])
        failure = self._settle(group, states, done)
        if failure is not None:
            raise failure

    def _commit_next(self) -> None:
        group, self._next = self._next, _Group()
        states = self._lockouts.take_unwritten()
        try:
            done = self._db.write_behind(_writer(group.events, states))
        except RuntimeError as err:  # the store is closed
            failed: concurrent.futures.Future[None] = concurrent.futures.Future()
            failed.set_exception(err)
            self._settle(group, states, failed)
            return
        self._in_flight = True
        self.groups += 1
        loop = asyncio.get_running_loop()

        def finished(done: concurrent.futures.Future[None]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits now
                loop.call_soon_threadsafe(self._finished, group, states, done)

        done.add_done_callback(finished)

    def _finished(
        self,
        group: _Group,
        states: list[tuple[str, str, LockoutState]],
        done: concurrent.futures.Future[None],
    ) -> None:
        self._settle(group, states, done)
        if len(self._next.waiters) < len(group.waiters):
            # Fewer decisions wait than doors were just answered: the answered ones run first
            # (their wakes are queued already; this goes after them) and what they decide
            # joins the waiting ones in one commit. Committing the few at once would make the
            # many wait a whole commit for them and then take another one (measured: with 64
            # doors the groups went 1, 63, 1, 63..., two commits for 64 decisions). And while
            # the loop decides, the writing thread is idle, and the other way round: neither
            # waits for the interpreter lock the other holds (measured: committing at once to
            # overlap the two, where the disk is fast, did worse on this 2-core box).
            asyncio.get_running_loop().call_soon(self._commit_queued)
        else:
            self._commit_queued()

    def _commit_queued(self) -> None:
        self._in_flight = False
        if self._next.waiters:
            self._commit_next()

    def _settle(
        self,
        group: _Group,
        states: list[tuple[str, str, LockoutState]],
        done: concurrent.futures.Future[None],
    ) -> BaseException | None:
        """Tell the group's waiters how their commit went; returns the failure, if any."""
        try:
            self._db.settled(done)
        except Exception as err:
            self._lockouts.not_written(states)
            for waiter in group.waiters:
                if not waiter.done():
                    waiter.set_exception(err)
                    waiter.exception()  # retrieved: a waiter whose caller left must not warn
            return err
        if group.events:
            self._outbox.changed.set()
        for waiter in group.waiters:
            if not waiter.done():
                waiter.set_result(None)
        return None


def _writer(
    events: list[AccessEvent], states: list[tuple[str, str, LockoutState]]
) -> Callable[[sqlite3.Connection], None]:
    """One group's transaction, for the store's writing thread (it holds plain data only)."""
    rows = Outbox.rows(events)

    def write(conn: sqlite3.Connection) -> None:
        Lockouts.write(conn, states)
        Outbox.insert(conn, rows)

    return write
