"""Riding out a full disk.

When a write finds the store's disk full (:class:`~gateway.store.db.StoreFullError`), nothing
stops: the reconcilers keep the locks in line from what the store holds, the validator keeps
deciding (its events and lockout counts wait in memory), the sync loop retries with backoff.
:class:`StoreKeeper` is the task that notices when space is back: it retries, with backoff,
writing what waits in memory and a small probe; once that commits, it wakes the reconcilers
and the sync loop so that they catch up at once instead of at their next retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from drivers.backoff import Backoff
from gateway.clock import Clock
from gateway.store.db import Database, StoreFullError
from gateway.store.meta import Meta
from gateway.store.timefmt import to_db

log = logging.getLogger(__name__)

PROBE_KEY = "store_checked_at"


class StoreKeeper:
    def __init__(
        self,
        db: Database,
        meta: Meta,
        flush: Sequence[Callable[[], object]],
        on_writable: Callable[[], None],
        clock: Clock,
        backoff: Backoff | None = None,
    ) -> None:
        self._db = db
        self._meta = meta
        self._flush = flush
        self._on_writable = on_writable
        self._clock = clock
        self._backoff = backoff or Backoff(1.0, 30.0)

    async def run(self) -> None:
        never = asyncio.Event()
        while True:
            await self._db.became_full.wait()
            self._backoff.reset()
            while True:
                delay = timedelta(seconds=self._backoff.next_delay())
                await self._clock.wait_until(self._clock.now() + delay, never)
                if self.try_writes():
                    break
            log.info("store writable: waking the locks and the sync to catch up")
            self._on_writable()

    def try_writes(self) -> bool:
        """Write what waits in memory, then the probe; False while the disk is still full."""
        try:
            for flush in self._flush:  # each in its own transaction: what committed is done
                flush()
            self._meta.set(PROBE_KEY, to_db(self._clock.now()) or "")
        except StoreFullError:
            return False
        return True
