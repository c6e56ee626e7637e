"""bleak backends over a bumble central: the real bleak API over the simulated radio.

``bleak.BleakClient(device, backend=backends.client)`` and
``bleak.BleakScanner(..., backend=backends.scanner)`` then run the driver under test through
bleak's own public classes, and the bytes cross a real ATT/GATT stack to the simulated lock.
:func:`backends_for` makes one pair of classes per central (bleak takes a class and reads its
``__name__``, so the central is a class attribute, not a constructor argument).

Contract, as bleak's platform backends keep it (tests/ble/test_backend_contract.py):

* ``connect`` raises ``TimeoutError`` when the peripheral does not answer within ``timeout``;
  it exchanges the MTU (BlueZ does so by itself) and fills :attr:`services`.
* ``connect(dangerous_use_bleak_cache=True)`` (bleak's BlueZ keyword) takes the services from
  the adapter's cache of the device's attribute table, if it holds one, instead of
  discovering them on the air; every discovery refreshes that cache (BlueZ keeps one per
  device too). Like BlueZ, descriptors are discovered once, not again at each subscription.
* ATT error responses become :class:`bleak.exc.BleakGATTProtocolError` with the ATT code.
* A link that drops while a request waits surfaces as :class:`bleak.exc.BleakError`, never as
  ``CancelledError`` (unless the calling task itself is being cancelled).
* ``disconnected_callback`` is called once, for a disconnection the client did not ask for.
* A write longer than ``mtu_size - 3`` is refused with :class:`BleakError` (this backend does
  no long writes; the Lockgate driver segments and never needs them).
* Cancelling a caller never cancels bumble's ATT request under it: bumble's GATT client has a
  window in which a response that arrives for a cancelled request breaks its host, so each
  request runs in its own task until its response (or the disconnection) ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as _uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.core import UUID
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy

from lockgate_sim.ble.central import BumbleCentral

log = logging.getLogger(__name__)

_PROPERTY_NAMES: list[tuple[int, CharacteristicPropertyName]] = [
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
]
_DEFAULT_MTU = 23
_CLOSE_TIMEOUT = 2.0
T = TypeVar("T")


def bleak_uuid(value: UUID) -> str:
    """bumble keeps UUIDs little-endian and prints its own form: give bleak's."""
    return str(_uuid.UUID(bytes=bytes(value.to_bytes(force_128=True))[::-1]))


def _address(target: BLEDevice | str) -> hci.Address:
    if isinstance(target, BLEDevice) and isinstance(target.details, hci.Address):
        return target.details
    text = target.address if isinstance(target, BLEDevice) else target
    return hci.Address(text.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)


@contextlib.asynccontextmanager
async def _gatt_errors(what: str) -> AsyncIterator[None]:
    """bumble's errors as bleak's; a cancellation that is not ours is a dropped link."""
    try:
        yield
    except att.ATT_Error as err:
        raise BleakGATTProtocolError(err.error_code) from err
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise BleakError(f"{what}: link lost while waiting") from None
    except core.TimeoutError as err:
        raise BleakError(f"{what}: no response in time") from err
    except (core.BaseBumbleError, ConnectionError) as err:
        raise BleakError(f"{what}: {err}") from err


class BumbleBleakClient(BaseBleakClient):
    central: ClassVar[BumbleCentral]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._peer_address = _address(address_or_ble_device)
        self._name = (
            address_or_ble_device.name
            if isinstance(address_or_ble_device, BLEDevice) and address_or_ble_device.name
            else self.address
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._inflight: set[asyncio.Future[Any]] = set()

    async def _att(self, what: str, request: Coroutine[Any, Any, T]) -> T:
        """Run one bumble GATT request to its end, whatever happens to the caller."""
        task = asyncio.ensure_future(request)
        self._inflight.add(task)
        task.add_done_callback(_settle)
        task.add_done_callback(self._inflight.discard)
        async with _gatt_errors(what):
            return await asyncio.shield(task)

    # --- state -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def is_connected(self) -> bool:
        conn = self._connection
        # handles are reused: the link is ours only if the device still maps it to us
        return conn is not None and self.central.device.connections.get(conn.handle) is conn

    @property
    def mtu_size(self) -> int:
        conn = self._connection
        return int(conn.att_mtu) if conn is not None and self.is_connected else _DEFAULT_MTU

    def _need_peer(self) -> Peer:
        if self._peer is None or not self.is_connected:
            raise BleakError("Not connected")
        return self._peer

    # --- connectivity ------------------------------------------------------------------------
    async def connect(
        self, pair: bool, dangerous_use_bleak_cache: bool = False, **kwargs: Any
    ) -> None:
        if self.is_connected:
            return
        try:
            connection = await self.central.connect(self._peer_address, self._timeout)
        except core.TimeoutError as err:
            raise TimeoutError(f"{self.address}: no connection within {self._timeout} s") from err
        except (core.BaseBumbleError, ConnectionError) as err:
            raise BleakError(f"{self.address}: connect failed: {err}") from err
        self._connection = connection
        self._closing = False
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        try:
            async with asyncio.timeout(self._timeout):
                peer = self._peer
                await self._att("exchange MTU", peer.request_mtu(self.central.preferred_mtu))
                key = str(self._peer_address)
                cached = self.central.gatt_cache.get(key) if dangerous_use_bleak_cache else None
                if cached is None:
                    cached = await self._att("discover", _discover(peer))
                    self.central.gatt_cache[key] = cached
                self.services = self._collection(_proxies(peer, cached))
            if pair:
                await self.pair()
        except BaseException:
            await self.disconnect()
            raise

    def _collection(self, services: list[ServiceProxy]) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in services:
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props = [name for flag, name in _PROPERTY_NAMES if char.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    bleak_uuid(char.uuid),
                    props,
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, bleak_uuid(desc.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        solicited = self._closing
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        if not solicited and self._disconnected_callback is not None:
            try:
                self._disconnected_callback()
            except Exception:  # inside bumble's HCI handling: never let it escape
                log.exception("%s: disconnected callback failed", self.address)

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None or not self.is_connected:
            self._connection = None
            return
        self._closing = True
        gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def ended(reason: int) -> None:
            if not gone.done():
                gone.set_result(reason)

        connection.once("disconnection", ended)
        try:
            await connection.disconnect()
        except (core.BaseBumbleError, ConnectionError) as err:
            log.debug("%s: disconnect: %s", self.address, err)
        if not gone.done() and self.is_connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await gone
        self._connection = None
        if self._inflight:  # the disconnection ended them: let them unwind
            await asyncio.wait(self._inflight, timeout=_CLOSE_TIMEOUT)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._connection
        if connection is None:
            raise BleakError("Not connected")
        await self._att("pair", connection.pair())

    async def unpair(self) -> None:
        keystore = self.central.device.keystore
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(str(self._peer_address))
        await self.disconnect()

    # --- I/O ---------------------------------------------------------------------------------
    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._need_peer()
        return bytearray(await self._att("read", peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._need_peer()
        return bytearray(await self._att("read descriptor", peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._need_peer()
        value = bytes(data)
        if len(value) > self.mtu_size - 3:
            raise BleakError(
                f"write of {len(value)} bytes exceeds ATT_MTU - 3 = {self.mtu_size - 3}"
            )
        await self._att(
            "write", peer.write_value(characteristic.handle, value, with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._need_peer()
        await self._att(
            "write descriptor", peer.write_value(descriptor.handle, bytes(data), with_response=True)
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._need_peer()

        def deliver(value: bytes) -> None:
            try:
                callback(bytearray(value))
            except Exception:  # inside bumble's ATT handling: never let it escape
                log.exception("%s: notification callback failed", self.address)

        await self._att("start notify", peer.subscribe(characteristic.obj, deliver))
        self._subscriptions[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._need_peer()
        deliver = self._subscriptions.pop(characteristic.handle, None)
        await self._att("stop notify", peer.unsubscribe(characteristic.obj, deliver))


@dataclass(frozen=True, slots=True)
class CachedCharacteristic:
    handle: int
    end_group_handle: int
    uuid: UUID
    properties: int
    descriptors: tuple[tuple[int, UUID], ...]


@dataclass(frozen=True, slots=True)
class CachedService:
    handle: int
    end_group_handle: int
    uuid: UUID
    characteristics: tuple[CachedCharacteristic, ...]


GattTable = tuple[CachedService, ...]
"""A device's attribute table as discovered: what an adapter caches per device."""


async def _discover(peer: Peer) -> GattTable:
    table = []
    await peer.discover_services()
    for service in peer.services:
        await service.discover_characteristics()
        chars = []
        for char in service.characteristics:
            descriptors = await peer.discover_descriptors(char)
            chars.append(
                CachedCharacteristic(
                    char.handle,
                    char.end_group_handle,
                    char.uuid,
                    int(char.properties),
                    tuple((d.handle, d.type) for d in descriptors),
                )
            )
        table.append(
            CachedService(service.handle, service.end_group_handle, service.uuid, tuple(chars))
        )
    return tuple(table)


def _proxies(peer: Peer, table: GattTable) -> list[ServiceProxy]:
    """bumble's proxies for ``table`` on this connection, without a request on the air."""
    client = peer.gatt_client
    client.services = []
    for cached in table:
        service = ServiceProxy(client, cached.handle, cached.end_group_handle, cached.uuid)  # type: ignore[no-untyped-call]
        for c in cached.characteristics:
            char: CharacteristicProxy[bytes] = CharacteristicProxy(
                client, c.handle, c.end_group_handle, c.uuid, c.properties
            )
            char.descriptors = [DescriptorProxy(client, h, t) for h, t in c.descriptors]
            char.descriptors_discovered = True  # bumble would look again at each subscribe
            service.characteristics.append(char)
        client.services.append(service)
    return list(client.services)


def _settle(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a request whose caller left, so it is not reported as lost."""
    if not task.cancelled():
        task.exception()


class BumbleBleakScanner(BaseBleakScanner):
    central: ClassVar[BumbleCentral]

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._remove: Callable[[], None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        if self._remove is None:
            self._remove = self.central.listen(self._on_advertisement)
            await self.central.scan_start()

    async def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None
            await self.central.scan_stop()

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = adv.address.to_string(with_type_qualifier=False)
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """bleak's view of one bumble advertisement (raw AD structures, parsed here)."""
    name: str | None = None
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    uuids: list[str] = []
    tx_power: int | None = None
    for ad_type, value in adv.data.ad_structures:
        value = bytes(value)
        if ad_type in (0x08, 0x09):
            name = value.decode("utf-8", "replace")
        elif ad_type == 0xFF and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
        elif ad_type in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            size = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}[ad_type]
            for i in range(0, len(value) - size + 1, size):
                uuids.append(bleak_uuid(UUID.from_bytes(value[i : i + size])))
        elif ad_type in (0x16, 0x20, 0x21):
            size = {0x16: 2, 0x20: 4, 0x21: 16}[ad_type]
            if len(value) >= size:
                service_data[bleak_uuid(UUID.from_bytes(value[:size]))] = value[size:]
        elif ad_type == 0x0A and value:
            tx_power = int.from_bytes(value[:1], "little", signed=True)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=int(adv.rssi),
        platform_data=(adv,),
    )


@dataclass(frozen=True, slots=True)
class BumbleBackends:
    client: type[BaseBleakClient]
    scanner: type[BaseBleakScanner]
    central: BumbleCentral


def backends_for(central: BumbleCentral) -> BumbleBackends:
    """A client and a scanner class bound to ``central`` (one pair per simulated adapter)."""
    suffix = "".join(ch if ch.isalnum() else "_" for ch in central.name)
    client = type(f"BumbleBleakClient_{suffix}", (BumbleBleakClient,), {"central": central})
    scanner = type(f"BumbleBleakScanner_{suffix}", (BumbleBleakScanner,), {"central": central})
    return BumbleBackends(client, scanner, central)
