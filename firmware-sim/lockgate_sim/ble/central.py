"""A bumble device in the central role: the simulated Bluetooth adapter a bleak backend drives.

One :class:`BumbleCentral` is one adapter: the gateway's, or a phone's. It fans advertisements
out to every scanner backend that listens, scans while at least one listens, serialises LE
connects (a controller takes one pending connect at a time, like BlueZ), and counts
connections so tests can check the gateway's connection limit from the radio's side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bumble import hci
from bumble.device import Advertisement, Connection, Device

if TYPE_CHECKING:
    from lockgate_sim.ble.backend import GattTable

log = logging.getLogger(__name__)

_TEARDOWN = 2.0

AdvertListener = Callable[[Advertisement], None]


class BumbleCentral:
    def __init__(self, device: Device, *, preferred_mtu: int = 247) -> None:
        self.device = device
        self.name: str = device.name
        self.preferred_mtu = preferred_mtu
        self.connects = 0
        self.connect_failures = 0
        self.peak_connections = 0
        self._listeners: dict[int, AdvertListener] = {}
        self._next_listener = 0
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self.gatt_cache: dict[str, GattTable] = {}
        """Peer address -> its attribute table as last discovered (the adapter's cache, as
        BlueZ keeps one per device)."""
        device.on("advertisement", self._on_advertisement)
        device.on("connection", self._on_connection)

    async def start(self) -> None:
        await self.device.power_on()

    async def close(self) -> None:
        drops = [
            asyncio.ensure_future(_quietly(conn.disconnect()))
            for conn in list(self.device.connections.values())
        ]
        if drops:
            await asyncio.wait(drops, timeout=_TEARDOWN)
        if self.device.scanning:
            await self.device.stop_scanning()

    # --- connections -------------------------------------------------------------------------
    @property
    def connection_count(self) -> int:
        return len(self.device.connections)

    def _on_connection(self, connection: Connection) -> None:
        self.peak_connections = max(self.peak_connections, self.connection_count)

    async def connect(self, address: hci.Address, within: float) -> Connection:
        """One LE connect at a time per adapter; raises bumble's errors (the backend maps them).

        A caller that is cancelled does not cancel bumble's connect (its HCI commands must
        run to their end): the connect finishes within ``within`` and a link nobody wants
        any more is dropped.
        """
        async with self._connect_lock:
            self.connects += 1
            attempt = asyncio.ensure_future(self.device.connect(address, timeout=within))
            try:
                connection: Connection = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                await asyncio.wait({attempt})
                if not attempt.cancelled() and attempt.exception() is None:
                    await _quietly(attempt.result().disconnect())
                raise
            except Exception:
                self.connect_failures += 1
                raise
            self.peak_connections = max(self.peak_connections, self.connection_count)
            return connection

    # --- scanning ----------------------------------------------------------------------------
    def listen(self, listener: AdvertListener) -> Callable[[], None]:
        key = self._next_listener
        self._next_listener += 1
        self._listeners[key] = listener

        def remove() -> None:
            self._listeners.pop(key, None)

        return remove

    async def scan_start(self) -> None:
        async with self._scan_lock:
            self._scan_users += 1
            if self._scan_users == 1 and not self.device.scanning:
                await self.device.start_scanning(filter_duplicates=False)

    async def scan_stop(self) -> None:
        async with self._scan_lock:
            self._scan_users = max(0, self._scan_users - 1)
            if self._scan_users == 0 and self.device.scanning:
                await self.device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        # runs inside bumble's HCI event handling: an exception here would break the host
        for listener in list(self._listeners.values()):
            try:
                listener(advertisement)
            except Exception:
                log.exception("%s: advertisement listener failed", self.name)


async def _quietly(step: Awaitable[object]) -> None:
    try:
        await step
    except Exception as err:  # best effort at teardown
        log.debug("teardown step failed: %s", err)
