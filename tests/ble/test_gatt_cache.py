"""A commissioned lock's attribute table comes from the adapter's cache on reconnect (no
discovery on the air), the device id is still checked, and a stale table falls back to a
fresh discovery."""

from __future__ import annotations

import dataclasses

from lockgate_sim.ble.backend import CachedCharacteristic, CachedService
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio

from drivers.base import Credential, CredentialKind
from gateway.clock import FakeClock
from tests.ble.conftest import Adapter, MemoryKeyStore, ble_driver

SETUP_FROM_CACHE = 5
"""ATT requests of a link set up from the cache: MTU exchange, device-info read, two CCCD
writes (response and status), status read. Discovery would add a dozen and more."""


def setup_requests(radio: VirtualRadio, me: str) -> int:
    """ATT requests that carried no lock-protocol datagram (the two CCCD writes are the only
    write requests that do not)."""
    air = radio.air
    return air.requests.get(me, 0) - (air.write_requests.get(me, 0) - 2)


def code(i: int) -> Credential:
    return Credential(f"c{i}", CredentialKind.CODE, str(500000 + i).encode(), bytes(8))


def shifted(service: CachedService, by: int) -> CachedService:
    chars = tuple(
        CachedCharacteristic(
            c.handle + by,
            c.end_group_handle + by,
            c.uuid,
            c.properties,
            tuple((h + by, t) for h, t in c.descriptors),
        )
        for c in service.characteristics
    )
    return dataclasses.replace(
        service,
        handle=service.handle + by,
        end_group_handle=service.end_group_handle + by,
        characteristics=chars,
    )


async def test_reconnect_uses_the_cached_table_and_still_checks_the_device(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    me = str(gateway.central.device.random_address)
    async with ble_driver(gateway, lock, clock) as d:  # commissioning authenticated it
        await d.disconnect()
        reads = d.conn.link_stats.reads
        radio.air.reset()
        await d.connect()
        assert setup_requests(radio, me) == SETUP_FROM_CACHE
        assert d.conn.link_stats.reads == reads + 2  # the device-info record, then the status
        assert (await d.put_credentials([code(1)])).ok
        assert {c.credential_id for c in lock.lock.list_credentials()} == {"c1"}
        assert d.conn.link_stats.stale_caches == 0

        # without the cache (another adapter, a restart of BlueZ) the table is discovered
        await d.disconnect()
        gateway.central.gatt_cache.clear()
        radio.air.reset()
        await d.connect()
        assert setup_requests(radio, me) > SETUP_FROM_CACHE + 5
        assert gateway.central.gatt_cache  # and remembered for the next link


async def test_a_stale_table_is_discovered_again(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    async with ble_driver(gateway, lock, clock) as d:
        await d.disconnect()
        cache = gateway.central.gatt_cache
        ((address, table),) = cache.items()
        cache[address] = tuple(shifted(s, 40) for s in table)  # new firmware moved everything
        assert (await d.put_credentials([code(2)])).ok
        assert d.conn.link_stats.stale_caches == 1
        assert cache[address] == table  # the fresh discovery replaced it
        assert {c.credential_id for c in lock.lock.list_credentials()} == {"c2"}

        await d.disconnect()
        cache[address] = tuple(s for s in table if len(s.characteristics) < 3)  # service gone
        assert (await d.list_credentials()) is not None
        assert d.conn.link_stats.stale_caches == 2
        assert cache[address] == table


async def test_the_cache_is_used_only_where_the_lock_authenticated(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    me = str(gateway.central.device.random_address)
    keystore = MemoryKeyStore()
    async with ble_driver(gateway, lock, clock, keystore=keystore):
        pass
    # a new driver (a gateway restart) with the adapter's cache still warm: the first link
    # discovers, as nothing has authenticated at that address in this run yet
    async with ble_driver(gateway, lock, clock, keystore=keystore, commission=False) as d:
        radio.air.reset()
        await d.connect()
        assert setup_requests(radio, me) > SETUP_FROM_CACHE + 5
