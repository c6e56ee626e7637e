"""One GATT link to a Nuki lock through the public ``bleak.BleakClient`` API.

:meth:`NukiLink.open` connects, finds the pairing and user-specific characteristics by UUID,
subscribes to their indications and reassembles each channel's indications into whole messages
(a lock may send one message as several 20-byte indications). Writes go with response: bleak
(BlueZ) turns a value longer than the ATT MTU into a long write, as the spec's "write (long)"
asks. Every bleak exception leaves here as a :mod:`drivers.errors` error.

:class:`NukiCarrier` is what the session talks to: it outlives links (the connection policy
attaches each new link to it) and raises :class:`~drivers.errors.LockOfflineError` between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from drivers.ble.adapter import BleAdapter
from drivers.ble.errors import map_error
from drivers.ble.scanner import Sighting
from drivers.errors import LockOfflineError, ProtocolError
from drivers.nuki import profile
from drivers.nuki.session import Channel
from drivers.nuki.wire import Reassembler, WireError

log = logging.getLogger(__name__)

_UUIDS = {Channel.PAIRING: profile.PAIRING_CHAR_UUID, Channel.USER: profile.USER_CHAR_UUID}


class NukiLink:
    def __init__(
        self,
        client: BleakClient,
        chars: dict[Channel, BleakGATTCharacteristic],
        *,
        lock_id: str,
        gatt_timeout: float,
        gone: asyncio.Event,
    ) -> None:
        self.client = client
        self.gone = gone
        """Set when the link dropped or was closed."""
        self.lock_id = lock_id
        self._chars = chars
        self._gatt_timeout = gatt_timeout
        self._closed = False
        self.queues: dict[Channel, asyncio.Queue[bytes]] = {c: asyncio.Queue() for c in Channel}
        self._reassemblers = {
            Channel.PAIRING: Reassembler(sealed=False),
            Channel.USER: Reassembler(sealed=True),
        }

    @classmethod
    async def open(
        cls,
        adapter: BleAdapter,
        sighting: Sighting,
        on_lost: Callable[[], None],
        *,
        lock_id: str,
        connect_timeout: float,
        gatt_timeout: float,
    ) -> NukiLink:
        kwargs: dict[str, Any] = {"bluez": adapter.bluez} if adapter.bluez else {}
        gone = asyncio.Event()

        def lost(_client: BleakClient) -> None:
            gone.set()
            on_lost()

        client = BleakClient(
            sighting.device,
            disconnected_callback=lost,
            timeout=connect_timeout,
            backend=adapter.backends.client,
            **kwargs,
        )
        try:
            await client.connect()
        except Exception as err:
            mapped = map_error(err, lock_id=lock_id, doing="connect")
            raise LockOfflineError(mapped.message, lock_id=lock_id) from err
        try:
            async with asyncio.timeout(gatt_timeout):
                link = await cls._set_up(client, lock_id, gatt_timeout, gone)
        except BaseException as err:
            await _quietly_disconnect(client, lock_id)
            if isinstance(err, Exception):
                raise map_error(err, lock_id=lock_id, doing="set up the link") from err
            raise
        log.debug("%s: connected to %s", lock_id, sighting.address)
        return link

    @classmethod
    async def _set_up(
        cls, client: BleakClient, lock_id: str, gatt_timeout: float, gone: asyncio.Event
    ) -> NukiLink:
        chars: dict[Channel, BleakGATTCharacteristic] = {}
        for channel, uuid in _UUIDS.items():
            char = client.services.get_characteristic(uuid)
            if char is None:
                raise ProtocolError(f"no characteristic {uuid}: not a Nuki lock", lock_id=lock_id)
            chars[channel] = char
        link = cls(client, chars, lock_id=lock_id, gatt_timeout=gatt_timeout, gone=gone)
        for channel, char in chars.items():
            await client.start_notify(char, link._indication(channel))
        if not client.is_connected:
            raise LockOfflineError("the link dropped while being set up", lock_id=lock_id)
        return link

    def _indication(self, channel: Channel) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def indicated(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                for message in self._reassemblers[channel].feed(bytes(data)):
                    self.queues[channel].put_nowait(message)
            except WireError as err:  # garbage: drop what was buffered, the request times out
                log.debug("%s: unreadable indication on %s: %s", self.lock_id, channel.value, err)

        return indicated

    @property
    def is_connected(self) -> bool:
        return not self._closed and not self.gone.is_set() and self.client.is_connected

    @property
    def idle_timeout_s(self) -> float:
        return 0.0

    async def write(self, channel: Channel, data: bytes) -> None:
        if not self.is_connected:
            raise LockOfflineError("link closed", lock_id=self.lock_id)
        try:
            async with asyncio.timeout(self._gatt_timeout):
                await self.client.write_gatt_char(self._chars[channel], data, response=True)
        except Exception as err:
            raise map_error(err, lock_id=self.lock_id, doing="write") from err

    def discard(self, channel: Channel) -> None:
        queue = self.queues[channel]
        while not queue.empty():
            queue.get_nowait()
        self._reassemblers[channel].reset()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.gone.set()
        await _quietly_disconnect(self.client, self.lock_id)


class NukiCarrier:
    """The session's transport across links: the connection policy attaches each new link."""

    def __init__(self, lock_id: str) -> None:
        self.lock_id = lock_id
        self.link: NukiLink | None = None

    def attach(self, link: NukiLink) -> None:
        self.link = link

    def detach(self) -> None:
        self.link = None

    def _need(self) -> NukiLink:
        link = self.link
        if link is None or not link.is_connected:
            raise LockOfflineError("not connected", lock_id=self.lock_id)
        return link

    async def write(self, channel: Channel, data: bytes) -> None:
        await self._need().write(channel, data)

    async def receive(self, channel: Channel, within: float) -> bytes:
        link = self._need()
        get = asyncio.ensure_future(link.queues[channel].get())
        lost = asyncio.ensure_future(link.gone.wait())
        try:
            done, _ = await asyncio.wait({get, lost}, timeout=within, return_when="FIRST_COMPLETED")
        finally:
            lost.cancel()
            if not get.done():
                get.cancel()
        if get in done:
            return get.result()
        if lost in done:
            raise LockOfflineError(
                "the link dropped while waiting for the answer", lock_id=self.lock_id
            )
        raise TimeoutError

    def discard(self, channel: Channel) -> None:
        if self.link is not None:
            self.link.discard(channel)


async def _quietly_disconnect(client: BleakClient, lock_id: str) -> None:
    try:
        await client.disconnect()
    except Exception as err:  # closing a link that is already gone
        log.debug("%s: disconnect: %s", lock_id, err)
