"""Proof that the event loop went on: a task that counts the loop's passes.

A test that holds something (a bulk write, a full serial buffer) and claims the loop was not held
with it counts passes before and after, instead of timing anything.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class LoopTicks:
    """``async with LoopTicks() as ticks``: ``ticks.count`` grows by one per pass of the loop
    (each time the counting task gets its turn) until the block ends."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)

    @classmethod
    def start(cls) -> LoopTicks:
        """Start counting now (for a test that stops it with :meth:`stop` part-way)."""
        ticks = cls()
        ticks._task = asyncio.create_task(ticks._tick(), name="loop-ticks")
        return ticks

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task])

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._tick(), name="loop-ticks")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def due_timers() -> int:
    """Timers still due on the running loop: a wait that ended left none behind (a cancelled
    timer stays in the loop's heap until its time, not counted). Reads the loop's heap, an
    implementation detail of asyncio's base event loop."""
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return sum(1 for handle in scheduled if not handle.cancelled())
