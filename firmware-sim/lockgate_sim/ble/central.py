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
from bumble.core import PhysicalTransport
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
            attempt = asyncio.ensure_future(self._connect(address, within))
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

    async def _connect(self, address: hci.Address, within: float) -> Connection:
        """bumble's connect, and the link made while its cancel was on the way.

        When ``within`` passes, bumble sends LE Create Connection Cancel. If the connection
        completed meanwhile (its event reaches the host before the cancel's answer), the
        controller refuses the cancel with Command Disallowed, and bumble raises that,
        leaving the new link to nobody: the lock would hold it until its idle timeout, and
        stop advertising if its connection slots are full. That link is the connect's result.
        """
        before = set(self.device.connections.values())
        try:
            return await self.device.connect(address, timeout=within)
        except hci.HCI_Error as err:
            if err.error_code != hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR:
                raise
            late = self.device.find_connection_by_bd_addr(address, PhysicalTransport.LE)
            if late is None or late in before:
                raise
            log.debug("%s: connected to %s as the connect timed out", self.name, address)
            return late

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
