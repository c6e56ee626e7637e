"""The driver's clock: idle disconnects, keep-alives and reconnect delays run on it.

Structurally the same as the gateway's clock (``now`` and ``wait_until``), so a test hands the
driver the gateway's ``FakeClock`` and moves time instead of sleeping. Radio timeouts (scan,
connect, one GATT request) stay on the event loop's own time: they measure the air.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

MAX_WAIT = 30.0
"""A wall-clock step must not strand a timer: waits are cut into slices of at most this."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        """Return when ``deadline`` passed or ``wake`` is set (does not clear ``wake``)."""
        ...


class LoopClock:
    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._now()

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        while not wake.is_set():
            timeout = MAX_WAIT
            if deadline is not None:
                remaining = (deadline - self.now()).total_seconds()
                if remaining <= 0:
                    return
                timeout = min(remaining, MAX_WAIT)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()


async def sleep(clock: Clock, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait ``seconds`` on ``clock``, or less if ``wake`` is set."""
    await clock.wait_until(clock.now() + timedelta(seconds=seconds), wake or asyncio.Event())
