"""Mobile-key challenges that already passed, per access method (docs/mobile-keys.md).

A lock draws a fresh challenge for every attempt, so a challenge seen twice for one method is
a recorded exchange forwarded again. Kept in the store, so a restart of the gateway does not
forget them; the oldest go once more than ``keep`` are held (a phone makes a few a day).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from gateway.store.db import Database, StoreFullError

log = logging.getLogger(__name__)

KEEP = 200_000


class SeenChallenges:
    """A pair that passes is claimed at once, in memory (a second use is refused from then
    on), and written by :meth:`settle` in its task: while a bulk write (a first full sync)
    holds the database, the task waits for it, not the event loop. Whoever answers a door
    awaits :meth:`settle` first, so a door opens only once its pair is durable.

    While the disk is full, pairs that passed are kept in memory (and refused a second
    time all the same) until :meth:`flush` can write them."""

    def __init__(self, db: Database, *, keep: int = KEEP) -> None:
        self._db = db
        self._keep = keep
        self._pending: dict[tuple[str, bytes], None] = {}
        """Claimed, not yet committed: :meth:`settle` writes them."""
        self._unsaved: dict[tuple[str, bytes], None] = {}
        self._settling: asyncio.Task[None] | None = None

    def first_use(self, method_id: str, challenge: bytes) -> bool:
        """Claim the pair; ``False`` when it passed before (a replay). Only reads the store (a
        read never waits for a writer). On an event loop the write follows in a task of its
        own, and :meth:`settle` waits for it; with no loop running it is written here."""
        pair = (method_id, challenge)
        if pair in self._pending or pair in self._unsaved or self._recorded(pair):
            return False
        self._pending[pair] = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a caller with no loop: nothing would ever settle it
            self._write_pending()
            return True
        self._writer(loop)
        return True

    async def settle(self) -> None:
        """Returns once every pair claimed so far is durable (kept in memory instead while the
        disk is full); raises what their write raised. Waits in this task while another
        connection writes; cancelling it leaves the write going on."""
        while self._pending:
            await asyncio.shield(self._writer(asyncio.get_running_loop()))

    def _writer(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
        """The task that writes the claimed pairs: the one under way (it writes every pair
        claimed until it does), or a new one."""
        task = self._settling
        if task is None or task.done():
            task = self._settling = loop.create_task(self._write(), name="challenges-write")
            task.add_done_callback(self._written)
        return task

    async def _write(self) -> None:
        async with self._db.turn():
            if self._pending:
                self._write_pending()

    @staticmethod
    def _written(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (err := task.exception()) is not None:
            # The pairs stay claimed (refused all the same); the next claim or settle retries.
            log.error("could not record the mobile-key challenges that passed: %s", err)

    def _write_pending(self) -> None:
        """In a turn (or with no loop): the claimed pairs in one transaction."""
        pairs = list(self._pending)
        try:
            with self._db.transaction() as conn:
                for method_id, challenge in pairs:
                    self._insert(conn, method_id, challenge)
        except StoreFullError:
            self._unsaved.update(dict.fromkeys(pairs))
        for pair in pairs:
            del self._pending[pair]

    def flush(self) -> None:
        """Write the pairs kept in memory while the disk was full."""
        if not self._unsaved:
            return
        with self._db.transaction() as conn:
            for method_id, challenge in self._unsaved:
                self._insert(conn, method_id, challenge)
        self._unsaved.clear()

    def _recorded(self, pair: tuple[str, bytes]) -> bool:
        return (
            self._db.conn.execute(
                "SELECT 1 FROM mobile_key_challenges WHERE method_id = ? AND challenge = ?", pair
            ).fetchone()
            is not None
        )

    def _insert(self, conn: sqlite3.Connection, method_id: str, challenge: bytes) -> None:
        cur = conn.execute(
            "INSERT OR IGNORE INTO mobile_key_challenges VALUES (?, ?)", (method_id, challenge)
        )
        if cur.rowcount and cur.lastrowid is not None:
            conn.execute(
                "DELETE FROM mobile_key_challenges WHERE rowid <= ?",
                (cur.lastrowid - self._keep,),
            )
