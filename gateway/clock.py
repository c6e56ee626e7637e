"""Injectable time.

Everything that reads the time or waits for a moment takes a :class:`Clock` (the interface the
drivers' timers use too, :class:`drivers.base.WaitClock`). Production uses
:class:`drivers.clock.SystemClock`; tests move a :class:`FakeClock` instead of sleeping. Wall time
is always an aware UTC ``datetime``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta

from drivers.base import WaitClock

Clock = WaitClock
"""The gateway's name for the clock interface it shares with drivers."""


class FakeClock:
    """A clock that moves only when told. ``advance`` wakes every waiter whose time has come."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._waiters: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def set(self, t: datetime) -> None:
        self._now = t
        self._fire()

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        self._now += timedelta(seconds=seconds, **kwargs)
        self._fire()
        return self._now

    def _fire(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        if wake.is_set():
            return
        if deadline is not None and deadline <= self._now:
            return
        wake_task = asyncio.ensure_future(wake.wait())
        waits: set[asyncio.Future[object]] = {wake_task}  # type: ignore[arg-type]
        timer: asyncio.Future[None] | None = None
        if deadline is not None:
            timer = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (deadline, next(self._counter), timer))
            waits.add(timer)  # type: ignore[arg-type]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake_task.cancel()
            if timer is not None and not timer.done():
                timer.cancel()


class FlowingClock:
    """A clock for drivers' short timers (keep-alive, idle disconnect, reconnect delays).

    It reads the wall time from ``inner`` (so a test's fake clock still decides what time it
    is), but a wait always ends after its duration has passed on the event loop too: durations
    flow even while a fake clock stands still, and a jump of the fake clock ends them early.
    """

    def __init__(self, inner: Clock) -> None:
        self._inner = inner

    def now(self) -> datetime:
        return self._inner.now()

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        if deadline is None:
            await self._inner.wait_until(None, wake)
            return
        seconds = (deadline - self._inner.now()).total_seconds()
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._inner.wait_until(deadline, wake)
        except TimeoutError:
            return
