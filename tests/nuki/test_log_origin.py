"""A Nuki lock's log after the lock changed under its id: the Nuki driver against the simulated
Nuki lock on the virtual radio, the gateway's own collection into a real store.

A factory reset empties the log and ends every pairing; a new lock under the same id has its
own log: both are read from their first entry with event ids no earlier log had. A lock that
lost its log but not its pairing is read again from the start as well (its newest index is
below the cursor).
"""

from __future__ import annotations

from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.nuki.gatt import NukiBleLock

from gateway.clock import FakeClock
from gateway.handle import LockHandle
from gateway.store.store import Store
from tests.audit_reads import collect
from tests.ble.conftest import Adapter, MemoryKeyStore
from tests.nuki.conftest import SECURITY_PIN, nuki_driver, nuki_lock


def typed(nuki: NukiBleLock, times: int) -> None:
    """``times`` wrong codes at the keypad: one log entry each."""
    for _ in range(times):
        assert not nuki.type_code("999999")


def ids(store: Store) -> list[str]:
    return [e.event_id for e in store.outbox.entries("front")]


async def test_a_factory_reset_and_pairing_again_reads_the_new_log_from_its_start(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, store: Store
) -> None:
    async with nuki_driver(gateway, nuki, clock, lock_id="front") as driver:
        handle = LockHandle(driver)
        typed(nuki, 4)
        assert await collect(handle, store) == 4
        await nuki.factory_reset()  # the log counts from 1 again, authorization ids too
        typed(nuki, 2)
        nuki.press_pairing_button()
        await handle.commission(str(SECURITY_PIN))
        assert await collect(handle, store) == 2
        typed(nuki, 3)  # 3..5: past the old cursor, 3 and 4 the old log's numbers
        assert await collect(handle, store) == 3
    assert ids(store) == [f"front:{i}" for i in range(1, 5)] + [f"front:1:{i}" for i in range(1, 6)]


async def test_pairing_again_with_the_same_lock_keeps_its_ids(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, store: Store
) -> None:
    """Commissioning a paired lock again keeps its pairing (only the PIN is checked): the
    same log, nothing read twice."""
    async with nuki_driver(gateway, nuki, clock, lock_id="front") as driver:
        handle = LockHandle(driver)
        typed(nuki, 2)
        assert await collect(handle, store) == 2
        typed(nuki, 1)
        await handle.commission(str(SECURITY_PIN))
        assert await collect(handle, store) == 1
    assert ids(store) == ["front:1", "front:2", "front:3"]


async def test_another_lock_under_the_same_id_has_every_entry_recorded_with_new_ids(
    radio: VirtualRadio, gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, store: Store
) -> None:
    keystore = MemoryKeyStore()
    async with nuki_driver(gateway, nuki, clock, lock_id="front", keystore=keystore) as driver:
        typed(nuki, 3)
        assert await collect(LockHandle(driver), store) == 3
    async with nuki_lock(radio, "Spare", clock) as spare:  # in pairing mode, its own log
        typed(spare, 2)
        async with nuki_driver(gateway, spare, clock, lock_id="front", keystore=keystore) as d:
            assert await collect(LockHandle(d), store) == 2
    assert ids(store) == ["front:1", "front:2", "front:3", "front:1:1", "front:1:2"]


async def test_a_lock_that_lost_its_log_is_read_again_from_the_start(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, store: Store
) -> None:
    """The same pairing, the log emptied (a firmware fault): its newest index is below the
    cursor, so it is a new log at once, not one to wait for until it passes the cursor."""
    async with nuki_driver(gateway, nuki, clock, lock_id="front") as driver:
        handle = LockHandle(driver)
        typed(nuki, 4)
        assert await collect(handle, store) == 4
        nuki.model.log.clear()
        typed(nuki, 2)
        assert await collect(handle, store) == 2
        assert await collect(handle, store) == 0  # and no new epoch each time
    assert ids(store) == [f"front:{i}" for i in range(1, 5)] + ["front:1:1", "front:1:2"]
