"""One GATT connection to one lock, through the public ``bleak.BleakClient`` API.

:meth:`GattLink.open` connects, finds the Lockgate service and its characteristics by UUID
(never by handle), reads the device-info record, subscribes to the response and status
characteristics, then reads the status once: a flag the lock raised before the subscription
(an access request) is never notified.

With ``cached_services`` (a lock that authenticated at this address before) the services come
from the adapter's cache of the lock's attribute table (bleak's ``dangerous_use_bleak_cache``)
instead of a discovery on the air. The device-info record is read and its device id checked
all the same. A table that no longer fits (new firmware: a characteristic missing, a handle
answering with an ATT error or with something that is not a device-info record) costs one
reconnect with a fresh discovery. Every bleak exception leaves here as a
:mod:`drivers.errors` error; a silent link is cut after ``gatt_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice

from drivers.ble.adapter import BleAdapter
from drivers.ble.errors import ImpostorError, map_error
from drivers.ble.profile import (
    ATT_WRITE_OVERHEAD,
    COMMAND_UUID,
    DEVICE_INFO_UUID,
    MIN_ATT_MTU,
    RESPONSE_UUID,
    SERVICE_UUID,
    STATUS_UUID,
    AdvertFlag,
    DeviceInfoRecord,
)
from drivers.errors import DriverError, LockAuthError, LockOfflineError, ProtocolError
from drivers.lockproto.errors import DecodeError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LinkStats:
    connects: int = 0
    writes_with_response: int = 0
    writes_without_response: int = 0
    reads: int = 0
    notifications: int = 0
    stale_caches: int = 0
    """Links whose cached GATT table did not fit (discovered again)."""


class GattLink:
    def __init__(
        self,
        client: BleakClient,
        command: BleakGATTCharacteristic,
        info: DeviceInfoRecord,
        *,
        lock_id: str,
        gatt_timeout: float,
        stats: LinkStats,
    ) -> None:
        self.client = client
        self.info = info
        self.lock_id = lock_id
        self.stats = stats
        self._command = command
        self._gatt_timeout = gatt_timeout
        self._closed = False

    @classmethod
    async def open(
        cls,
        adapter: BleAdapter,
        device: BLEDevice,
        *,
        lock_id: str,
        expect_device_id: bytes | None,
        connect_timeout: float,
        gatt_timeout: float,
        pair: bool,
        on_segment: Callable[[bytes], None],
        on_lost: Callable[[], None],
        on_status: Callable[[AdvertFlag], None],
        stats: LinkStats,
        cached_services: bool = False,
    ) -> GattLink:
        args = (adapter, device)
        kwargs: dict[str, Any] = {
            "lock_id": lock_id,
            "expect_device_id": expect_device_id,
            "connect_timeout": connect_timeout,
            "gatt_timeout": gatt_timeout,
            "pair": pair,
            "on_segment": on_segment,
            "on_lost": on_lost,
            "on_status": on_status,
            "stats": stats,
        }
        if cached_services:
            try:
                return await cls._open(*args, cached=True, **kwargs)
            except ProtocolError as err:
                log.info(
                    "%s: the cached GATT table does not fit (%s): discovering again",
                    lock_id,
                    err.message,
                )
                stats.stale_caches += 1
        return await cls._open(*args, cached=False, **kwargs)

    @classmethod
    async def _open(
        cls,
        adapter: BleAdapter,
        device: BLEDevice,
        *,
        cached: bool,
        lock_id: str,
        expect_device_id: bytes | None,
        connect_timeout: float,
        gatt_timeout: float,
        pair: bool,
        on_segment: Callable[[bytes], None],
        on_lost: Callable[[], None],
        on_status: Callable[[AdvertFlag], None],
        stats: LinkStats,
    ) -> GattLink:
        kwargs: dict[str, Any] = {"bluez": adapter.bluez} if adapter.bluez else {}
        client = BleakClient(
            device,
            disconnected_callback=lambda _client: on_lost(),
            timeout=connect_timeout,
            pair=pair,
            backend=adapter.backends.client,
            **kwargs,
        )
        try:
            # bleak's BlueZ keyword; other backends take and may ignore it
            await client.connect(**({"dangerous_use_bleak_cache": True} if cached else {}))
        except Exception as err:
            raise _offline(map_error(err, lock_id=lock_id, doing="connect")) from err
        stats.connects += 1
        try:
            async with asyncio.timeout(gatt_timeout):
                command, info = await _set_up(
                    client, lock_id, device.address, expect_device_id, on_segment, on_status,
                    stats,
                )
        except BaseException as err:
            await _quietly_disconnect(client, lock_id)
            if isinstance(err, Exception):
                raise map_error(err, lock_id=lock_id, doing="set up the link") from err
            raise
        return cls(
            client,
            command,
            info,
            lock_id=lock_id,
            gatt_timeout=gatt_timeout,
            stats=stats,
        )

    @property
    def is_connected(self) -> bool:
        return not self._closed and self.client.is_connected

    @property
    def idle_timeout_s(self) -> float:
        return float(self.info.idle_timeout_s)

    @property
    def segment_size(self) -> int:
        """Bytes per write: what bleak says fits a write without response (BlueZ reports
        the negotiated MTU there, while its ``mtu_size`` may stay at 23)."""
        return max(MIN_ATT_MTU - ATT_WRITE_OVERHEAD, self._command.max_write_without_response_size)

    async def write(self, data: bytes, *, response: bool) -> None:
        if not self.is_connected:
            raise LockOfflineError("link closed", lock_id=self.lock_id)
        try:
            async with asyncio.timeout(self._gatt_timeout):
                await self.client.write_gatt_char(self._command, data, response=response)
        except Exception as err:
            raise map_error(err, lock_id=self.lock_id, doing="write") from err
        if response:
            self.stats.writes_with_response += 1
        else:
            self.stats.writes_without_response += 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await _quietly_disconnect(self.client, self.lock_id)


async def _set_up(
    client: BleakClient,
    lock_id: str,
    address: str,
    expect_device_id: bytes | None,
    on_segment: Callable[[bytes], None],
    on_status: Callable[[AdvertFlag], None],
    stats: LinkStats,
) -> tuple[BleakGATTCharacteristic, DeviceInfoRecord]:
    service = client.services.get_service(SERVICE_UUID)
    if service is None:
        raise ProtocolError("no Lockgate service: not a Lockgate lock", lock_id=lock_id)
    chars = {c.uuid.lower(): c for c in service.characteristics}
    missing = [u for u in (COMMAND_UUID, RESPONSE_UUID, DEVICE_INFO_UUID) if u not in chars]
    if missing:
        raise ProtocolError(f"the Lockgate service lacks {missing}", lock_id=lock_id)
    raw = await client.read_gatt_char(chars[DEVICE_INFO_UUID])
    stats.reads += 1
    try:
        info = DeviceInfoRecord.decode(bytes(raw))
    except DecodeError as err:
        raise ProtocolError(f"bad device info: {err}", lock_id=lock_id) from err
    if expect_device_id is not None and info.device_id != expect_device_id:
        raise ImpostorError(
            f"a different lock answered at {address} (device {info.device_id.hex()})",
            address=address,
            device_id=info.device_id,
            lock_id=lock_id,
        )

    def notified(_char: BleakGATTCharacteristic, data: bytearray) -> None:
        stats.notifications += 1
        on_segment(bytes(data))

    await client.start_notify(chars[RESPONSE_UUID], notified)
    flags = info.flags
    if STATUS_UUID in chars:  # optional: a lock without it is polled by the keep-alive

        def status(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            if data:
                on_status(AdvertFlag(data[0] & 0x0F))

        await client.start_notify(chars[STATUS_UUID], status)
        # Notifications tell of changes, and only once subscribed: a flag raised before (an
        # access request made while we were connecting, when the lock had stopped
        # advertising for lack of a free slot) is never notified. Read the state now.
        state = await client.read_gatt_char(chars[STATUS_UUID])
        stats.reads += 1
        if state:
            flags = AdvertFlag(state[0] & 0x0F)
    if not client.is_connected:
        raise LockOfflineError("the link dropped while being set up", lock_id=lock_id)
    on_status(flags)
    return chars[COMMAND_UUID], info


async def _quietly_disconnect(client: BleakClient, lock_id: str) -> None:
    try:
        await client.disconnect()
    except Exception as err:  # closing a link that is already gone
        log.debug("%s: disconnect: %s", lock_id, err)


def _offline(err: DriverError) -> DriverError:
    """A connect that fails means the lock is not reachable now (unless it refused us)."""
    if isinstance(err, LockAuthError | ProtocolError | LockOfflineError):
        return err
    return LockOfflineError(err.message, lock_id=err.lock_id)
