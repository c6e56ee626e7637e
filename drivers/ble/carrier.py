"""One lock's GATT connection as a datagram :class:`~drivers.lockproto.carrier.Carrier`.

The session layer (:mod:`drivers.lockproto.client`) sends and receives whole datagrams; here
they are cut into segments that fit the ATT MTU (:mod:`.segment`), written to the command
characteristic, and reassembled from notifications of the response characteristic.
:attr:`generation` moves on with every new connection, so a session never outlives its link;
a link that drops while the session waits ends the wait at once (``LockOfflineError``).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

from drivers.ble.link import GattLink
from drivers.ble.segment import Reassembler, segment, segment_count
from drivers.errors import LockOfflineError

WriteMode = Literal["last", "all", "none"]
_DEFAULT_SEGMENT = 20
RECEIVE_LIMIT = 0xFFFF
"""The longest datagram accepted from a lock: what the segment header can say. A lock's reply
is bounded by its own ``max_message`` (plus the seal), not by what the gateway sends."""


@dataclass(slots=True)
class CarrierStats:
    datagrams_sent: int = 0
    datagrams_received: int = 0
    segments_sent: int = 0
    links: int = 0
    links_lost: int = 0


class GattCarrier:
    def __init__(
        self,
        lock_id: str,
        *,
        max_datagram: int = 4096,
        write_mode: WriteMode = "last",
        segment_time: float = 0.015,
    ) -> None:
        self.lock_id = lock_id
        self.write_mode = write_mode
        self.segment_time = segment_time
        self.stats = CarrierStats()
        self._max = max_datagram
        self._link: GattLink | None = None
        self._generation = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._lost = asyncio.Event()
        self._exclusive = asyncio.Lock()
        self.reassembler = Reassembler(RECEIVE_LIMIT)

    # --- the link under it -------------------------------------------------------------------
    @property
    def link(self) -> GattLink | None:
        return self._link

    def attach(self, link: GattLink) -> None:
        self._link = link
        self._generation += 1
        self.stats.links += 1
        self.reassembler.reset()
        self.discard_pending()
        self._lost = asyncio.Event()

    def detach(self) -> None:
        """The link closed or dropped: waiting receivers learn it at once."""
        if self._link is not None:
            self._link = None
            self._lost.set()

    def on_segment(self, data: bytes) -> None:
        datagram = self.reassembler.feed(data)
        if datagram is not None:
            self.stats.datagrams_received += 1
            self._queue.put_nowait(datagram)

    # --- Carrier -----------------------------------------------------------------------------
    @property
    def max_datagram(self) -> int:
        """The longest datagram we send: our limit and the lock's receive buffer."""
        link = self._link
        return self._max if link is None else min(self._max, link.info.max_datagram)

    @property
    def generation(self) -> int:
        return self._generation

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        return self._exclusive

    async def send(self, datagram: bytes) -> None:
        link = self._link
        if link is None or not link.is_connected:
            raise LockOfflineError("no BLE link to the lock", lock_id=self.lock_id)
        segments = segment(datagram, link.segment_size)
        last = len(segments) - 1
        for i, seg in enumerate(segments):
            response = self.write_mode == "all" or (self.write_mode == "last" and i == last)
            await link.write(seg, response=response)
            self.stats.segments_sent += 1
        self.stats.datagrams_sent += 1

    async def receive(self, within: float) -> bytes:
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self._link is None:
            raise LockOfflineError("no BLE link to the lock", lock_id=self.lock_id)
        lost = self._lost
        getter = asyncio.ensure_future(self._queue.get())
        waiter = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, waiter}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            if not getter.done():
                getter.cancel()
                await asyncio.wait({getter})  # its end, without taking its cancel for ours
        if getter in done:
            return getter.result()
        if lost.is_set():
            raise LockOfflineError("the BLE link dropped", lock_id=self.lock_id)
        raise TimeoutError

    def discard_pending(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def wire_time(self, datagram_len: int) -> float:
        link = self._link
        size = link.segment_size if link is not None else _DEFAULT_SEGMENT
        return segment_count(datagram_len, size) * self.segment_time
