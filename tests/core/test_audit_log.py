"""A lock's audit log into the outbox: recorded durably with its cursor, then acknowledged, and
the commit waits for the disk off the event loop (an unlock's own log entry used to hold the
unlock's answer for one more fsync)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from lockgate_sim.driver import SimDriver, SimOptions

from drivers.base import DriverContext, EventKind
from gateway.audit_log import collect_audit_log
from gateway.clock import FakeClock
from gateway.handle import LockHandle
from gateway.store.store import Store

WAIT = 5.0


async def test_the_log_is_recorded_while_another_writer_holds_the_store(
    store: Store, clock: FakeClock
) -> None:
    driver = SimDriver(
        "front", SimOptions(), DriverContext(now=clock.now, keystore=store.keystore("front"))
    )
    handle = LockHandle(driver)
    driver.sim.unlock(3)  # a remote unlock: the lock logs it
    driver.sim.lock()
    assert [e.kind for e in driver.sim.log] == [EventKind.UNLOCKED, EventKind.LOCKED]

    # Another writer (a snapshot, a group of decisions) holds the store's write lock.
    other = sqlite3.connect(store.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        async def collect() -> int:
            async with handle.session() as ops:
                return await collect_audit_log(ops, store.outbox, {}, logging.getLogger("t"))

        task = asyncio.create_task(collect(), name="collect")
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        async with asyncio.timeout(WAIT):
            await ticked.wait()  # the event loop goes on while the commit waits
        for _ in range(10):
            await asyncio.sleep(0)  # yield: let the collection reach its commit
        assert not task.done()
        assert store.outbox.cursor("front") == 0 and store.outbox.entries() == []
        assert len(driver.sim.log) == 2  # not acknowledged before it is recorded
    finally:
        other.execute("COMMIT")
        other.close()
    async with asyncio.timeout(WAIT):
        assert await task == 2
    assert [e.event_id for e in store.outbox.entries()] == ["front:1", "front:2"]
    assert store.outbox.cursor("front") == 2
    assert driver.sim.log == []  # acknowledged once durable
    assert store.outbox.changed.is_set()
    await handle.close()
