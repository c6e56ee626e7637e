"""A lock's audit log into the outbox: each page recorded with its cursor, then acknowledged
to the lock (never before), and entries the gateway decided itself are not recorded twice."""

from __future__ import annotations

import logging

from lockgate_sim.driver import SimDriver, SimOptions

from drivers.base import DriverContext, EventKind
from gateway.audit_log import collect_audit_log
from gateway.clock import FakeClock
from gateway.handle import LockHandle
from gateway.store.store import Store


async def test_a_remote_unlock_is_recorded_then_acknowledged(
    store: Store, clock: FakeClock
) -> None:
    driver = SimDriver(
        "front", SimOptions(), DriverContext(now=clock.now, keystore=store.keystore("front"))
    )
    handle = LockHandle(driver)
    driver.sim.unlock(3)  # a remote unlock: the lock logs it
    driver.sim.lock()
    assert [e.kind for e in driver.sim.log] == [EventKind.UNLOCKED, EventKind.LOCKED]
    async with handle.session() as ops:
        assert await collect_audit_log(ops, store.outbox, {}, logging.getLogger("t")) == 2
    assert [e.event_id for e in store.outbox.entries()] == ["front:1", "front:2"]
    assert store.outbox.cursor("front") == 2
    assert driver.sim.log == []  # acknowledged once recorded
    assert store.outbox.changed.is_set()
    async with handle.session() as ops:  # nothing new: nothing recorded, the cursor stays
        assert await collect_audit_log(ops, store.outbox, {}, logging.getLogger("t")) == 0
    assert store.outbox.cursor("front") == 2
    await handle.close()
