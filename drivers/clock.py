"""The wall clock that timers wait on, for the gateway and for drivers' own timers.

:class:`~drivers.base.WaitClock` is the interface (``now`` and ``wait_until``); the gateway
hands drivers its clock through :class:`~drivers.base.DriverContext`, and a test hands both a
fake one (``gateway.clock.FakeClock``) and moves time instead of sleeping. Timeouts that measure
the air or the wire (scan, connect, one request) stay on the event loop's own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from drivers.base import WaitClock

MAX_WAIT_SECONDS = 30.0
"""A wall-clock step (NTP correcting a Pi that booted in 1970) must not strand a timer: waits
are cut into slices of at most this."""


_utc_now: Callable[[], datetime] = functools.partial(datetime.now, UTC)
"""``datetime.now(UTC)`` with no Python frame around it (read on every offline decision)."""


class SystemClock:
    """The real clock; ``now`` can be swapped for another source of wall time."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or _utc_now

    def now(self) -> datetime:
        return self._now()

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        while not wake.is_set():
            if deadline is None:
                timeout = MAX_WAIT_SECONDS
            else:
                remaining = (deadline - self.now()).total_seconds()
                if remaining <= 0:
                    return
                timeout = min(remaining, MAX_WAIT_SECONDS)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the wait ends, and a loop that ignores cancellation hangs shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()


async def sleep(clock: WaitClock, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait ``seconds`` on ``clock``, or less if ``wake`` is set."""
    await clock.wait_until(clock.now() + timedelta(seconds=seconds), wake or asyncio.Event())
