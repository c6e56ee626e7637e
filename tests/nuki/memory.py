"""A Nuki transport in memory: the client's messages go straight into the simulator's engine.

For the byte-level tests (vectors, pairing and command rules); the GATT tests run the same
engine behind the real bleak API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from lockgate_sim.nuki.engine import LinkState, NukiEngine

from drivers.nuki.session import Channel


class MemoryTransport:
    def __init__(self, engine: NukiEngine) -> None:
        self.engine = engine
        self.link = LinkState()
        self.sent: list[tuple[Channel, bytes]] = []
        self.received: list[tuple[Channel, bytes]] = []
        self._queues = {c: asyncio.Queue[bytes]() for c in Channel}

    async def write(self, channel: Channel, data: bytes) -> None:
        self.sent.append((channel, data))
        if channel is Channel.PAIRING:
            replies = self.engine.pairing(self.link, data)
        else:
            replies = self.engine.sealed(self.link, data)
        for reply in replies:
            self.received.append((channel, reply))
            self._queues[channel].put_nowait(reply)

    async def receive(self, channel: Channel, within: float) -> bytes:
        async with asyncio.timeout(within):
            return await self._queues[channel].get()

    def discard(self, channel: Channel) -> None:
        queue = self._queues[channel]
        while not queue.empty():
            queue.get_nowait()


def feed(*chunks: bytes) -> Iterator[bytes]:
    yield from chunks


class Script:
    """An rng that hands out given byte strings in order (then refuses)."""

    def __init__(self, *values: bytes) -> None:
        self.values = list(values)

    def __call__(self, n: int) -> bytes:
        value = self.values.pop(0)
        assert len(value) == n, f"scripted {len(value)} bytes where {n} were asked"
        return value
