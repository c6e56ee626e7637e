"""A connect that completes while its cancel is on the way leaves no link to nobody.

On a loaded host the connect timeout can pass while the controller is already connecting: the
host sends LE Create Connection Cancel, the connection completes first, and the controller
refuses the cancel (``Command Disallowed``). bumble raises that refusal from ``connect`` and
keeps the link, which nobody then uses: the lock holds it (one of its two connection slots),
and with the gateway's own link in the other it stops advertising until its idle timeout drops
the stray one, so a phone cannot find it meanwhile. (Seen as the demo's phone step failing
under load.) The simulated controller reproduces the race on demand
(:attr:`~lockgate_sim.ble.radio.SimController.cancel_loses_race`); the lock advertises slowly
so that the connect is still pending when its timeout passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.phone import find_lock
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock

from gateway.clock import FakeClock
from tests.ble.conftest import BLE_SPEC, WAIT, Adapter

SLEEPY_MS = 1000.0
"""The lock's advertising interval: far longer than the connect timeout below."""
CONNECT_TIMEOUT_S = 0.05


@pytest.fixture
async def sleepy_lock(radio: VirtualRadio, clock: FakeClock) -> AsyncIterator[BleLock]:
    lock = BleLock(
        SimLock("front", BLE_SPEC, now=clock.now), radio.device("lock-front"), clock=clock
    )
    lock.faults.advertising_interval_ms = SLEEPY_MS
    async with lock:
        yield lock


async def settled(lock: BleLock, *, connections: int, centrals: int) -> None:
    """The lock has seen ``connections`` links in all and holds ``centrals`` now."""
    async with asyncio.timeout(WAIT):
        await lock.wait_for(
            lambda: lock.stats.connections == connections and lock.connected_centrals == centrals
        )


async def test_the_link_made_as_the_connect_timed_out_is_the_callers(
    radio: VirtualRadio, gateway: Adapter, sleepy_lock: BleLock
) -> None:
    device = await find_lock(gateway.backends, address=sleepy_lock.address, within=WAIT)
    controller = radio.controllers["gateway"]
    controller.cancel_loses_race = True
    client = BleakClient(device, backend=gateway.backends.client, timeout=CONNECT_TIMEOUT_S)
    await client.connect()  # the timeout passes; the connection wins the race with the cancel
    assert not controller.cancel_loses_race, "the connect was not cancelled: no race"
    assert client.is_connected
    await settled(sleepy_lock, connections=1, centrals=1)
    await client.disconnect()
    await settled(sleepy_lock, connections=1, centrals=0)  # and it advertises again


async def test_a_caller_that_gave_up_leaves_the_lock_no_link(
    radio: VirtualRadio, gateway: Adapter, sleepy_lock: BleLock
) -> None:
    device = await find_lock(gateway.backends, address=sleepy_lock.address, within=WAIT)
    controller = radio.controllers["gateway"]
    controller.cancel_loses_race = True
    client = BleakClient(device, backend=gateway.backends.client, timeout=CONNECT_TIMEOUT_S)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(CONNECT_TIMEOUT_S / 2):  # the caller gives up first
            await client.connect()
    assert not controller.cancel_loses_race, "the connect was not cancelled: no race"
    assert not client.is_connected
    await settled(sleepy_lock, connections=1, centrals=0)
