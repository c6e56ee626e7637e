"""A limit on the BLE connections one adapter runs at once, shared fairly.

A driver takes a slot before it connects and gives it back when its link closes. When every
slot is taken, a driver that wants one waits in line, and the holders that sit idle are asked
to let go (:meth:`SlotHolder.release_requested`); a holder busy with an operation lets go when
it is done (:attr:`ConnectionSlots.contended`). Five locks through two slots thus take turns
instead of starving.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class SlotHolder(Protocol):
    @property
    def busy(self) -> bool: ...

    def release_requested(self) -> None:
        """Give the slot back as soon as no operation runs (disconnect)."""
        ...


class ConnectionSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a connection limit below one")
        self.limit = limit
        self.peak = 0
        self.waits = 0
        self._holders: list[SlotHolder] = []
        self._reserved = 0
        """Slots handed to a woken waiter that has not taken them yet."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return len(self._holders)

    @property
    def contended(self) -> bool:
        return bool(self._waiters)

    def holds(self, holder: SlotHolder) -> bool:
        return any(h is holder for h in self._holders)

    def _free(self) -> int:
        return self.limit - len(self._holders) - self._reserved

    async def acquire(self, holder: SlotHolder) -> None:
        if self.holds(holder):
            return
        if self._free() > 0 and not self._waiters:
            self._take(holder)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self.waits += 1
        for other in list(self._holders):
            if not other.busy:
                other.release_requested()
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._reserved -= 1  # a slot was handed to us but we leave: pass it on
                self._wake_next()
            elif future in self._waiters:
                self._waiters.remove(future)
            raise
        self._reserved -= 1
        self._take(holder)

    def _take(self, holder: SlotHolder) -> None:
        self._holders.append(holder)
        self.peak = max(self.peak, len(self._holders))

    def release(self, holder: SlotHolder) -> None:
        for i, h in enumerate(self._holders):
            if h is holder:
                del self._holders[i]
                self._wake_next()
                return

    def _wake_next(self) -> None:
        while self._waiters and self._free() > 0:
            future = self._waiters.popleft()
            if not future.done():
                self._reserved += 1
                future.set_result(None)
