"""Long CPU work that shares the event loop: give it back every few milliseconds.

A 50,000-grant sync parses, encrypts and plans for seconds; done in one go it would starve
everything else on the loop (MQTT keepalives, door decisions, other locks). Such loops call
:meth:`Slicer.tick` once per item: it returns at once until ``budget_s`` of work has passed,
then yields to the loop (``asyncio.sleep(0)``) and starts a new slice.
"""

from __future__ import annotations

import asyncio
import time

SLICE_S = 0.01
"""Work done between two yields: well under the 50 ms the loop may be held at a time."""


class Slicer:
    def __init__(self, budget_s: float = SLICE_S) -> None:
        self._budget = budget_s
        self._since = time.perf_counter()
        self.yields = 0

    async def tick(self) -> None:
        """Yield to the loop if this slice has used its budget."""
        if time.perf_counter() - self._since >= self._budget:
            await asyncio.sleep(0)
            self.yields += 1
            self._since = time.perf_counter()
