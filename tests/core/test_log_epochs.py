"""Which log a lock's cursor counts in: the rule (gateway.log_epochs.follow), and a driver that
names no origin (the in-process simulator, like the Z-Wave driver's journal) whose lock the
gateway forgot: the next log under the id is a new one."""

from __future__ import annotations

import logging

import pytest
from lockgate_sim.driver import SimDriver, SimOptions

from drivers.base import DriverContext
from gateway.audit_log import collect_audit_log
from gateway.clock import FakeClock
from gateway.handle import LockHandle
from gateway.log_epochs import LogChange, event_id, follow, went_back
from gateway.store.lock_logs import LogPosition
from gateway.store.lock_map import LockRecord
from gateway.store.store import Store

LOG = logging.getLogger("tests.log_epochs")
AT = LogPosition("a", 2, 40)


@pytest.mark.parametrize(
    ("kept", "origin", "position", "change"),
    [
        (None, "a", LogPosition("a", 0, 0), LogChange.FIRST),
        (None, None, LogPosition(None, 0, 0), LogChange.FIRST),
        (AT, "a", AT, LogChange.SAME),
        (AT, None, AT, LogChange.SAME),  # a driver that cannot tell now: the same log
        (AT, "b", LogPosition("b", 3, 0), LogChange.NEW_ORIGIN),
        (LogPosition(None, 0, 9), "a", LogPosition("a", 0, 9), LogChange.ADOPTED),
        (LogPosition(None, 0, 9), None, LogPosition(None, 0, 9), LogChange.SAME),
        (LogPosition("a", 2, 40, True), "a", AT, LogChange.RECOGNISED),
        (LogPosition("a", 2, 40, True), "b", LogPosition("b", 3, 0), LogChange.NEW_ORIGIN),
        (LogPosition("a", 2, 40, True), None, LogPosition("a", 3, 0), LogChange.FORGOTTEN),
        (LogPosition(None, 0, 9, True), None, LogPosition(None, 1, 0), LogChange.FORGOTTEN),
        (LogPosition(None, 0, 9, True), "a", LogPosition("a", 1, 0), LogChange.FORGOTTEN),
    ],
)
def test_the_rule(
    kept: LogPosition | None, origin: str | None, position: LogPosition, change: LogChange
) -> None:
    assert follow(kept, origin) == (position, change)


def test_a_log_went_back_only_below_the_cursor() -> None:
    assert went_back(AT, 39)
    assert not went_back(AT, 40)
    assert not went_back(AT, None)


def test_event_ids_of_the_first_log_are_as_they_always_were() -> None:
    assert event_id("front", 0, 7) == "front:7"
    assert event_id("front", 1, 7) == "front:1:7"
    # lock ids hold no ":" (config), so no id of one epoch is another's
    assert len({event_id("a", e, s) for e in range(4) for s in range(1, 30)}) == 4 * 29


def sim(lock_id: str, store: Store, clock: FakeClock) -> SimDriver:
    ctx = DriverContext(now=clock.now, keystore=store.keystore(lock_id))
    return SimDriver(lock_id, SimOptions(), ctx)


async def collect(handle: LockHandle, store: Store) -> int:
    async with handle.session() as ops:
        return await collect_audit_log(ops, store.outbox, {}, LOG)


@pytest.mark.parametrize("how", ["removed", "dropped_from_config"])
async def test_a_forgotten_lock_without_an_origin_starts_a_new_log(
    store: Store, clock: FakeClock, how: str
) -> None:
    record = LockRecord("front", "sim", frozenset({"s"}), frozenset(), frozenset())
    store.lock_map.replace([record], clock.now())
    first = sim("front", store, clock)
    for _ in range(3):
        first.sim.unlock()
    handle = LockHandle(first)
    assert await collect(handle, store) == 3
    await handle.close()
    if how == "removed":
        store.lock_map.remove("front")
    else:
        assert store.lock_map.replace([], clock.now()) == ["front"]

    again = sim("front", store, clock)  # its log counts from 1 again
    again.sim.unlock()
    again.sim.lock()
    handle = LockHandle(again)
    assert await collect(handle, store) == 2
    assert await collect(handle, store) == 0
    await handle.close()
    assert [e.event_id for e in store.outbox.entries("front")] == [
        "front:1",
        "front:2",
        "front:3",
        "front:1:1",
        "front:1:2",
    ]


async def test_a_lock_kept_in_the_config_keeps_its_log(store: Store, clock: FakeClock) -> None:
    record = LockRecord("front", "sim", frozenset({"s"}), frozenset(), frozenset())
    store.lock_map.replace([record], clock.now())
    driver = sim("front", store, clock)
    driver.sim.unlock()
    handle = LockHandle(driver)
    assert await collect(handle, store) == 1
    store.lock_map.replace([record], clock.now())  # a restart with the same config
    driver.sim.lock()
    assert await collect(handle, store) == 1
    await handle.close()
    assert [e.event_id for e in store.outbox.entries("front")] == ["front:1", "front:2"]
