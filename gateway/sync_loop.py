"""When to sync: a full snapshot first and every ``full_resync_interval_s``, an incremental poll
every ``poll_interval_s``, a sync at once when asked (``sync now``), backoff when the cloud is
away, and the maximum backoff when it refuses our key."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from drivers.backoff import Backoff
from gateway.clock import Clock
from gateway.cloud.client import CloudClient
from gateway.cloud.errors import CloudAuthError, CloudError
from gateway.config import CloudConfig
from gateway.store.db import StoreFullError
from gateway.sync import CloudSync, SyncReport
from gateway.timetrust import TimeTrust

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CloudHealth:
    reachable: bool | None = None
    last_sync_at: datetime | None = None
    last_full_sync_at: datetime | None = None
    last_error: str | None = None
    last_error_code: str | None = None


class SyncLoop:
    def __init__(
        self,
        sync: CloudSync,
        client: CloudClient,
        clock: Clock,
        config: CloudConfig,
        trust: TimeTrust,
        backoff: Backoff | None = None,
    ) -> None:
        self._sync = sync
        self._client = client
        self._clock = clock
        self._config = config
        self._trust = trust
        self._backoff = backoff or Backoff(1.0, 300.0)
        self._now = asyncio.Event()
        self._full_requested = True
        self._waiters: list[asyncio.Future[SyncReport]] = []
        self.health = CloudHealth()
        self.synced = asyncio.Condition()

    async def sync_now(self, *, full: bool = False) -> SyncReport:
        """Ask for a sync at once and wait for its report (raises the CloudError if it fails).

        Callers bound the wait with ``asyncio.timeout``.
        """
        fut: asyncio.Future[SyncReport] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._full_requested |= full
        self._now.set()
        return await fut

    async def run(self) -> None:
        next_at: datetime | None = self._clock.now()  # the first sync at once
        last_full: datetime | None = None
        while True:
            await self._clock.wait_until(next_at, self._now)
            self._now.clear()
            t = self._clock.now()
            full_due = last_full is None or t - last_full >= timedelta(
                seconds=self._config.full_resync_interval_s
            )
            waiters, self._waiters = self._waiters, []
            # Taken with the waiters: a full sync asked for while this one runs is the next one.
            full_asked, self._full_requested = self._full_requested, False
            try:
                if full_asked or full_due:
                    report = await self._sync.full()
                    last_full = t
                else:
                    report = await self._sync.incremental()
            except (CloudError, StoreFullError) as err:
                self._full_requested |= full_asked
                delay = self._failed(err)
                next_at = t + timedelta(seconds=delay)
                for w in waiters:
                    if not w.done():
                        w.set_exception(err)
            except Exception as err:  # a bug: who waits learns of it; supervised() restarts us
                self._full_requested |= full_asked
                for w in waiters:
                    if not w.done():
                        w.set_exception(err)
                raise
            else:
                self._backoff.reset()
                self._trust.observe_cloud_time(self._client.last_server_time)
                self.health = CloudHealth(True, t, last_full, None, None)
                next_at = t + timedelta(seconds=self._config.poll_interval_s)
                for w in waiters:
                    if not w.done():
                        w.set_result(report)
            async with self.synced:
                self.synced.notify_all()

    def poke(self) -> None:
        """Sync at once (without waiting for it), e.g. when the store takes writes again."""
        self._now.set()

    def _failed(self, err: CloudError | StoreFullError) -> float:
        if isinstance(err, StoreFullError):
            delay = self._backoff.next_delay()
            log.log(
                logging.WARNING if self.health.last_error_code != err.code else logging.DEBUG,
                "cloud data fetched but not stored, the disk is full (next try in %.1fs)",
                delay,
            )
            self.health = replace(self.health, last_error=str(err), last_error_code=err.code)
            return delay
        first = self.health.reachable is not False
        if isinstance(err, CloudAuthError):
            delay = self._backoff.give_up_for_now()
            log.error("cloud refused the API key: %s (next try in %.0fs)", err, delay)
        else:
            delay = self._backoff.next_delay()
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "cloud sync failed: %s (next try in %.1fs)",
                err,
                delay,
            )
        self.health = CloudHealth(
            False,
            self.health.last_sync_at,
            self.health.last_full_sync_at,
            str(err),
            err.code,
        )
        return delay
