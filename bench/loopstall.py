"""How long the event loop was held: a task that asks to wake every millisecond and records
how late it woke. Used by the benches, never by tests (no timing assertions there)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Self

TICK_S = 0.001


class StallMonitor:
    def __init__(self) -> None:
        self.longest_s = 0.0
        self.stalls_over_50ms = 0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late = time.perf_counter() - t0 - TICK_S
            self.longest_s = max(self.longest_s, late)
            self.stalls_over_50ms += late > 0.05

    def reset(self) -> None:
        self.longest_s = 0.0
        self.stalls_over_50ms = 0

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._watch(), name="stall-monitor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
