"""One address on a :class:`SerialBus` as a datagram :class:`~drivers.lockproto.carrier.Carrier`."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from drivers.errors import LockOfflineError
from drivers.lockproto.framing import MAX_DATAGRAM, wire_size
from drivers.serial.bus import SerialBus

BITS_PER_BYTE = 10
"""8N1: start bit, eight data bits, stop bit."""


class BusCarrier:
    def __init__(self, bus: SerialBus, address: int) -> None:
        self.bus = bus
        self.address = address
        self._mailbox = bus.register(address)
        self._sent_generation = bus.generation

    def close(self) -> None:
        self.bus.unregister(self.address)

    @property
    def max_datagram(self) -> int:
        return MAX_DATAGRAM

    @property
    def generation(self) -> int:
        return self.bus.generation

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        return self.bus.exchange_lock

    async def send(self, datagram: bytes) -> None:
        self._sent_generation = self.bus.generation
        await self.bus.send(self.address, datagram)

    async def receive(self, within: float) -> bytes:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            item = await self._mailbox.get(deadline)
            if isinstance(item, bytes):
                return item
            if item >= self._sent_generation:
                raise LockOfflineError(f"serial port {self.bus.path} lost")

    def discard_pending(self) -> None:
        self._mailbox.clear()

    def wire_time(self, datagram_len: int) -> float:
        return wire_size(datagram_len) * BITS_PER_BYTE / self.bus.baud
