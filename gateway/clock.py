"""Injectable time.

Everything that reads the time or waits for a moment takes a :class:`Clock` (the interface the
drivers' timers use too, :class:`drivers.base.WaitClock`). Wall time is always an aware UTC
``datetime``.

The gateway's own source of time is a :class:`TimeSource`: a wall clock *and* a monotonic one,
because a Pi's wall clock can step (NTP correcting a boot without RTC, an operator's ``date
-s``) and :mod:`gateway.timetrust` judges it against the monotonic clock. Production uses
:class:`SystemTime`; tests move a :class:`FakeClock` instead of sleeping, and can step its wall
clock alone (:meth:`FakeClock.step`) to play a clock that jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from drivers.base import WaitClock
from drivers.clock import SystemClock

Clock = WaitClock
"""The gateway's name for the clock interface it shares with drivers."""


class TimeSource(WaitClock, Protocol):
    """A wall clock with the monotonic clock beside it (seconds, arbitrary origin)."""

    def monotonic(self) -> float: ...

    async def wait_monotonic(self, deadline: float | None, wake: asyncio.Event) -> None:
        """Return when ``monotonic()`` reaches ``deadline`` or ``wake`` is set (``None``: wake
        only). Does not clear ``wake``."""
        ...


class SystemTime(SystemClock):
    """The real wall clock and ``time.monotonic`` (the event loop's clock too)."""

    def __init__(self) -> None:
        super().__init__()

    now = staticmethod(functools.partial(datetime.now, UTC))
    """``datetime.now(UTC)`` itself (no Python frame around it: read on every decision; the
    wall time of a :class:`SystemClock` can be swapped, this one's cannot)."""

    monotonic = staticmethod(time.monotonic)
    """``time.monotonic`` itself (no Python frame around it: read on every decision)."""

    async def wait_monotonic(self, deadline: float | None, wake: asyncio.Event) -> None:
        if deadline is None:
            await wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await wake.wait()


_Waiters = list[tuple[float, int, asyncio.Future[None]]]


class FakeClock:
    """A clock that moves only when told. ``advance`` and ``set`` let time pass (the wall and
    the monotonic clock together) and wake every waiter whose time has come; ``step`` moves the
    wall clock alone, as NTP or ``date -s`` would. A negative ``advance`` is a step back."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._mono = 1000.0
        self._wall_waiters: _Waiters = []
        self._mono_waiters: _Waiters = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, t: datetime) -> None:
        self.advance((t - self._now).total_seconds())

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        delta = timedelta(seconds=seconds, **kwargs)
        self._now += delta
        self._mono += max(0.0, delta.total_seconds())
        self._fire()
        return self._now

    def step(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        """The wall clock jumps by this much; no time passes."""
        self._now += timedelta(seconds=seconds, **kwargs)
        self._fire()
        return self._now

    def _fire(self) -> None:
        t = self._now.timestamp()
        for waiters, now in ((self._wall_waiters, t), (self._mono_waiters, self._mono)):
            while waiters and waiters[0][0] <= now:
                _, _, fut = heapq.heappop(waiters)
                if not fut.done():
                    fut.set_result(None)

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        if deadline is not None and deadline <= self._now:
            return
        at = None if deadline is None else deadline.timestamp()
        await self._wait(self._wall_waiters, at, wake)

    async def wait_monotonic(self, deadline: float | None, wake: asyncio.Event) -> None:
        if deadline is not None and deadline <= self._mono:
            return
        await self._wait(self._mono_waiters, deadline, wake)

    async def _wait(self, heap: _Waiters, at: float | None, wake: asyncio.Event) -> None:
        if wake.is_set():
            return
        wake_task = asyncio.ensure_future(wake.wait())
        waits: set[asyncio.Future[object]] = {wake_task}  # type: ignore[arg-type]
        timer: asyncio.Future[None] | None = None
        if at is not None:
            timer = asyncio.get_running_loop().create_future()
            heapq.heappush(heap, (at, next(self._counter), timer))
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
