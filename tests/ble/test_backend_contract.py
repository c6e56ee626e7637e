"""Contract of the bleak backend over bumble, through bleak's public classes.

What the driver relies on from any bleak backend: errors mapped as bleak documents them,
the disconnected callback for links the client did not close, the MTU, and a link that drops
while a write waits surfacing as ``BleakError`` (not as a stray ``CancelledError``). A small
bumble peripheral with a characteristic per behaviour plays the other side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bumble import att, gatt
from bumble.device import Connection, Device
from lockgate_sim.ble.radio import VirtualRadio

from drivers.ble import errors as ble_errors
from drivers.ble.profile import LockAdvert, advertising_data
from drivers.errors import (
    LockAuthError,
    LockBusyError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
)
from tests.ble.conftest import WAIT, Adapter

SERVICE = "0000feed-0000-1000-8000-00805f9b34fb"
ECHO = "0000fee1-0000-1000-8000-00805f9b34fb"
REJECT = "0000fee2-0000-1000-8000-00805f9b34fb"
HANG_UP = "0000fee3-0000-1000-8000-00805f9b34fb"
OUT = "0000fee4-0000-1000-8000-00805f9b34fb"
STALL = "0000fee5-0000-1000-8000-00805f9b34fb"


@dataclass
class Peripheral:
    device: Device
    writes: list[bytes] = field(default_factory=list)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    out: gatt.Characteristic[bytes] | None = None

    @property
    def address(self) -> str:
        return str(self.device.random_address)

    def connection(self) -> Connection:
        (conn,) = self.device.connections.values()
        return conn


@contextlib.asynccontextmanager
async def peripheral(radio: VirtualRadio, *, max_mtu: int = 247) -> AsyncIterator[Peripheral]:
    device = radio.device("peripheral")
    p = Peripheral(device)
    props = gatt.Characteristic.Properties

    def echo(conn: Connection, value: bytes) -> None:
        p.writes.append(bytes(value))

    def reject(conn: Connection, value: bytes) -> None:
        raise att.ATT_Error(att.ErrorCode.WRITE_REQUEST_REJECTED)

    async def hang_up(conn: Connection, value: bytes) -> None:
        await conn.disconnect()  # the write request stays unanswered

    async def stall(conn: Connection, value: bytes) -> None:
        p.stalled.set()
        await p.release.wait()

    p.out = gatt.Characteristic(OUT, props.NOTIFY | props.READ, gatt.Characteristic.READABLE, b"x")
    device.add_service(
        gatt.Service(
            SERVICE,
            [
                gatt.Characteristic(
                    ECHO,
                    props.WRITE | props.WRITE_WITHOUT_RESPONSE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=echo),
                ),
                gatt.Characteristic(
                    REJECT,
                    props.WRITE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=reject),
                ),
                gatt.Characteristic(
                    HANG_UP,
                    props.WRITE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=hang_up),
                ),
                gatt.Characteristic(
                    STALL,
                    props.WRITE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=stall),
                ),
                p.out,
            ],
        )
    )
    device.gatt_server.max_mtu = max_mtu
    await device.power_on()
    await device.start_advertising(
        advertising_interval_min=20, advertising_interval_max=20, auto_restart=True
    )
    try:
        yield p
    finally:
        p.release.set()
        with contextlib.suppress(Exception):
            await device.stop_advertising()


@pytest.fixture
async def dev(radio: VirtualRadio, gateway: Adapter) -> AsyncIterator[Peripheral]:
    async with peripheral(radio) as p:
        yield p


def client(adapter: Adapter, target: str, **kwargs: object) -> BleakClient:
    return BleakClient(target, backend=adapter.backends.client, timeout=1.0, **kwargs)  # type: ignore[arg-type]


async def test_scanner_reports_adverts_and_filters_on_service_uuid(
    radio: VirtualRadio, gateway: Adapter, dev: Peripheral
) -> None:
    lock_device = radio.device("a-lock")
    await lock_device.power_on()
    advert = LockAdvert(b"\x01\x02\x03\x04\x05")
    await lock_device.start_advertising(
        advertising_data=advertising_data(advert),
        advertising_interval_min=20,
        advertising_interval_max=20,
    )
    from drivers.ble.profile import SERVICE_UUID

    seen: asyncio.Queue[tuple[BLEDevice, AdvertisementData]] = asyncio.Queue()
    async with BleakScanner(
        lambda d, a: seen.put_nowait((d, a)),
        service_uuids=[SERVICE_UUID],
        backend=gateway.backends.scanner,
    ):
        async with asyncio.timeout(WAIT):
            device, data = await seen.get()
    assert device.address == str(lock_device.random_address)
    assert data.service_uuids == [SERVICE_UUID]
    assert data.manufacturer_data == {0xFFFF: advert.encode()}
    # the plain peripheral (no Lockgate service) never reached the callback
    while not seen.empty():
        assert seen.get_nowait()[0].address != dev.address
    await lock_device.stop_advertising()


async def test_connect_to_a_silent_address_times_out(gateway: Adapter) -> None:
    c = BleakClient("C0:00:00:00:0F:FF", backend=gateway.backends.client, timeout=0.2)
    with pytest.raises(TimeoutError):
        await c.connect()
    assert not c.is_connected
    assert gateway.central.connect_failures == 1


async def test_mtu_is_negotiated_and_bounds_writes(radio: VirtualRadio, gateway: Adapter) -> None:
    async with peripheral(radio, max_mtu=23) as p, client(gateway, p.address) as c:
        assert c.mtu_size == 23
        char = c.services.get_characteristic(ECHO)
        assert char is not None
        assert char.max_write_without_response_size == 20
        await c.write_gatt_char(char, b"x" * 20, response=False)
        with pytest.raises(BleakError, match="exceeds"):
            await c.write_gatt_char(char, b"x" * 21, response=False)
        await c.write_gatt_char(char, b"y" * 20, response=True)
    assert p.writes == [b"x" * 20, b"y" * 20]


async def test_mtu_247_by_default(gateway: Adapter, dev: Peripheral) -> None:
    async with client(gateway, dev.address) as c:
        assert c.mtu_size == 247
        char = c.services.get_characteristic(ECHO)
        assert char is not None
        assert char.max_write_without_response_size == 244


async def test_att_error_becomes_gatt_protocol_error(gateway: Adapter, dev: Peripheral) -> None:
    async with client(gateway, dev.address) as c:
        with pytest.raises(BleakGATTProtocolError) as info:
            await c.write_gatt_char(REJECT, b"no", response=True)
        assert info.value.code == BleakGATTProtocolErrorCode.WRITE_REQUEST_REJECTED
        assert c.is_connected  # an ATT error is not a broken link
        with pytest.raises(BleakError):
            await c.write_gatt_char("0000dead-0000-1000-8000-00805f9b34fb", b"?")


async def test_disconnected_callback_only_for_links_we_did_not_close(
    gateway: Adapter, dev: Peripheral
) -> None:
    calls: list[BleakClient] = []
    gone = asyncio.Event()

    def lost(c: BleakClient) -> None:
        calls.append(c)
        gone.set()

    c = client(gateway, dev.address, disconnected_callback=lost)
    await c.connect()
    await c.disconnect()
    assert not c.is_connected
    assert calls == []
    await c.connect()  # the peripheral advertises again after a disconnection
    await dev.connection().disconnect()  # now the peripheral hangs up
    async with asyncio.timeout(WAIT):
        await gone.wait()
    assert not c.is_connected
    await c.disconnect()  # closing an already dropped link is fine and silent
    assert calls == [c]


async def test_link_dropped_during_a_pending_write_is_a_bleak_error(
    gateway: Adapter, dev: Peripheral
) -> None:
    async with client(gateway, dev.address) as c:
        with pytest.raises(BleakError) as info:
            await c.write_gatt_char(HANG_UP, b"bye", response=True)
        assert not isinstance(info.value, asyncio.CancelledError)
        assert not c.is_connected


async def test_cancelling_a_pending_write_still_cancels(gateway: Adapter, dev: Peripheral) -> None:
    async with client(gateway, dev.address) as c:
        task = asyncio.create_task(c.write_gatt_char(STALL, b"wait", response=True))
        async with asyncio.timeout(WAIT):
            await dev.stalled.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        dev.release.set()


async def test_notifications_and_reads(gateway: Adapter, dev: Peripheral) -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()
    async with client(gateway, dev.address) as c:
        assert bytes(await c.read_gatt_char(OUT)) == b"x"
        await c.start_notify(OUT, lambda _ch, data: got.put_nowait(bytes(data)))
        assert dev.out is not None
        await dev.device.notify_subscribers(dev.out, b"hello")
        async with asyncio.timeout(WAIT):
            assert await got.get() == b"hello"
        await c.stop_notify(OUT)
        await dev.device.notify_subscribers(dev.out, b"not for you")
        await c.read_gatt_char(OUT)  # one ATT round trip: a notification would be in by now
        assert got.empty()


# --- the driver's view of bleak's errors ------------------------------------------------------
@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (TimeoutError(), LockTimeoutError),
        (BleakGATTProtocolError(0x05), LockAuthError),
        (BleakGATTProtocolError(0x0F), LockAuthError),
        (BleakGATTProtocolError(0xFE), LockBusyError),
        (BleakGATTProtocolError(0xFC), ProtocolError),
        (BleakDBusError("org.bluez.Error.InProgress", []), LockBusyError),
        (BleakDBusError("org.bluez.Error.NotConnected", []), LockOfflineError),
        (
            BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]),
            LockOfflineError,
        ),
        (BleakDBusError("org.bluez.Error.AuthenticationFailed", []), LockAuthError),
        (BleakDBusError("org.bluez.Error.Failed", ["Operation failed"]), LockLinkError),
        (BleakDeviceNotFoundError("AA"), LockOfflineError),
        (BleakCharacteristicNotFoundError("x"), ProtocolError),
        (BleakError("Not connected"), LockLinkError),
        (EOFError(), LockLinkError),
    ],
)
def test_error_mapping(err: BaseException, expected: type[Exception]) -> None:
    mapped = ble_errors.map_error(err, lock_id="front", doing="write")
    assert type(mapped) is expected
    assert mapped.lock_id == "front"
