"""Attacker's side on the radio (issue 10, finding 7): a device that clones the lock's
advertisement. The scanner used to connect to the newest sighting that matched the five
device-id bytes a lock broadcasts; a clone advertising often won, the device-info check
failed with ``LockAuthError`` (not retried) and the lock backed off to its maximum, so
revocations stopped reaching it. Now that address is passed over, not the lock; the other
sightings are tried at once; a rogue-device alert is raised.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock

from drivers.base import BoltState, DriverContext, SecurityAlert
from gateway.clock import FakeClock
from tests.ble.conftest import BLE_SPEC, WAIT, Adapter, MemoryKeyStore, ble_driver
from tests.ble.test_driver import codes

T = TypeVar("T")

@contextlib.asynccontextmanager
async def clone(
    radio: VirtualRadio, clock: FakeClock, device_id: bytes
) -> AsyncIterator[BleLock]:
    """A rogue device on the radio: the Lockgate service, advertising ``device_id``'s first
    five bytes every 20 ms, its device-info record naming ``device_id``; no keys of ours."""
    sim = SimLock("rogue", BLE_SPEC, now=clock.now)
    sim.link_keys.update(
        {
            "static": base64.b64encode(os.urandom(32)).decode(),
            "device_id": base64.b64encode(device_id).decode(),
            "pairing_secret": base64.b64encode(os.urandom(16)).decode(),
        }
    )
    async with BleLock(sim, radio.device("rogue"), clock=clock) as rogue:
        yield rogue


async def commissioned_keys(gateway: Adapter, lock: BleLock, clock: FakeClock) -> MemoryKeyStore:
    keystore = MemoryKeyStore()
    async with ble_driver(gateway, lock, clock, keystore=keystore):
        pass
    return keystore


async def rogue_answers_first(
    lock: BleLock, rogue: BleLock, op: Coroutine[Any, Any, T]
) -> T:
    """Run ``op`` while the clone is the only one advertising; the real lock comes back as
    soon as the gateway connected to the clone (then both advertise, as in the field)."""
    await lock.power_off()
    task = asyncio.create_task(op)
    try:
        async with asyncio.timeout(WAIT):
            await rogue.wait_for(lambda: rogue.stats.connections >= 1)
        await lock.power_on()
        async with asyncio.timeout(WAIT):
            return await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_cloned_advertisement_of_another_device_does_not_keep_the_lock_out_of_reach(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    keystore = await commissioned_keys(gateway, lock, clock)
    alerts: list[SecurityAlert] = []
    ctx = DriverContext(now=clock.now, keystore=keystore, alert=alerts.append)
    async with (
        clone(radio, clock, lock.device_id[:5] + b"\xee\xee\xee") as rogue,
        ble_driver(gateway, lock, clock, ctx=ctx, commission=False) as d,
    ):
        await rogue_answers_first(lock, rogue, d.connect())  # a fresh gateway: no address
        assert (await d.put_credentials(codes(3))).ok
        assert (await d.status()).bolt is BoltState.LOCKED
        assert [(a.kind, a.address) for a in alerts] == [("rogue_device", rogue.address)]
        assert rogue.device_id.hex() in alerts[0].detail
        assert rogue.stats.connections == 1  # passed over from then on, not the lock
        await d.disconnect()
        await d.unlock(None)
        assert lock.lock.bolt is BoltState.UNLOCKED
        assert rogue.stats.connections == 1
        assert len(alerts) == 1


async def test_clone_of_the_whole_device_info_is_passed_over_after_it_fails_the_handshake(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    # the device id is public (the device-info record, HELLO_REPLY): a clone can copy it all,
    # but it cannot answer the handshake without the keys
    keystore = await commissioned_keys(gateway, lock, clock)
    alerts: list[SecurityAlert] = []
    ctx = DriverContext(now=clock.now, keystore=keystore, alert=alerts.append)
    async with (
        clone(radio, clock, lock.device_id) as rogue,
        ble_driver(gateway, lock, clock, ctx=ctx, commission=False) as d,
    ):
        status = await rogue_answers_first(lock, rogue, d.status())
        assert status.bolt is BoltState.LOCKED
        assert [(a.kind, a.address) for a in alerts] == [("rogue_device", rogue.address)]
        assert "unauthenticated" in alerts[0].detail
        assert rogue.stats.connections == 1
        assert d.conn.stats.impostors == 1
