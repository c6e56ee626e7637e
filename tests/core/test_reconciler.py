"""The reconciler against an in-process simulated lock, moved by a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from lockgate_sim.driver import SimDriver, SimOptions
from lockgate_sim.lock import SimLock

from drivers.base import DriverContext
from gateway.clock import FakeClock
from gateway.config import ReconcileConfig
from gateway.handle import LockHandle
from gateway.planner import LockScope
from gateway.reconciler import LockReconciler
from gateway.store.store import Store
from gateway.views import ViewCache
from tests.core.conftest import snapshot
from tests.core.factories import code, grant

WAIT = 2.0


@dataclass
class Rig:
    rec: LockReconciler
    sim: SimLock
    store: Store
    clock: FakeClock

    def held(self) -> set[str]:
        return {c.credential_id for c in self.sim.list_credentials()}

    def states(self) -> dict[str, tuple[str, str | None]]:
        return {
            k: (v.state.value, v.error_code)
            for k, v in self.store.sync_states.for_lock("front").items()
        }

    async def until(self, predicate: object) -> None:
        async with asyncio.timeout(WAIT):
            await self.rec.wait_for(predicate)  # type: ignore[arg-type]


@asynccontextmanager
async def make_rig(store: Store, clock: FakeClock, **options: object) -> AsyncIterator[Rig]:
    driver = SimDriver(
        "front",
        SimOptions(**options),
        DriverContext(now=clock.now, keystore=store.keystore("front")),
    )
    rec = LockReconciler(
        LockHandle(driver),
        LockScope("front", frozenset({"space-a"}), frozenset(), frozenset()),
        store,
        ViewCache(store).current,
        clock,
        ReconcileConfig(lead_time_s=600, retry_min_s=1, retry_max_s=8),
    )
    task = asyncio.create_task(rec.run(), name="rec")
    try:
        yield Rig(rec, driver.sim, store, clock)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def rig(store: Store, clock: FakeClock) -> AsyncIterator[Rig]:
    async with make_rig(store, clock, slots=5, max_batch=2) as r:
        yield r


def load(rig: Rig, grants: list, methods: list) -> None:  # type: ignore[type-arg]
    rig.store.cloud.apply_snapshot(snapshot(grants, methods), rig.clock.now())
    rig.rec.wake()


async def test_codes_go_on_at_start_and_come_off_at_end(rig: Rig) -> None:
    t = rig.clock.now()
    g = grant("g1", start=t + timedelta(minutes=5), hours=1)
    load(rig, [g], [code("m1", "g1", "123456"), code("m2", "g1", "654321")])
    await rig.until(lambda: rig.states() == {"m1": ("scheduled", None), "m2": ("scheduled", None)})
    assert rig.held() == set()
    rig.clock.set(g.starts_at)  # type: ignore[arg-type]
    await rig.until(lambda: rig.held() == {"m1", "m2"})
    await rig.until(lambda: set(rig.states().values()) == {("applied", None)})
    rig.clock.set(g.ends_at)  # type: ignore[arg-type]
    await rig.until(lambda: rig.held() == set() and rig.states() == {})


async def test_batches_respect_the_lock_and_nothing_is_written_twice(rig: Rig) -> None:
    t = rig.clock.now()
    load(rig, [grant("g1", start=t)], [code(f"m{i}", "g1", f"20{i:02d}") for i in range(5)])
    await rig.until(lambda: len(rig.held()) == 5 and rig.rec.health.passes >= 1)
    rig.rec.wake()
    passes = rig.rec.health.passes
    await rig.until(lambda: rig.rec.health.passes > passes)
    assert max(rig.sim.put_counts.values()) == 1


async def test_refusals_become_per_credential_failures_and_the_rest_applies(rig: Rig) -> None:
    t = rig.clock.now()
    rig.sim.faults.reject_ids.add("m-a-refused")
    methods = [
        code("m-ok", "g1", "1234"),
        code("m-letters", "g1", "12ab"),
        code("m-a-refused", "g1", "5678"),
    ]
    methods += [code(f"m-more{i}", "g1", f"900{i}") for i in range(3)]
    load(rig, [grant("g1", start=t)], methods)
    await rig.until(lambda: "m-ok" in rig.held())
    states = rig.states()
    assert states["m-ok"] == ("applied", None)
    assert states["m-letters"] == ("failed", "code_rule")
    assert states["m-a-refused"] == ("failed", "rejected")
    assert rig.held() == {"m-ok", "m-more0", "m-more1", "m-more2"}
    # a permanent refusal is not retried on every pass
    rig.rec.wake()
    passes = rig.rec.health.passes
    await rig.until(lambda: rig.rec.health.passes > passes)
    assert rig.sim.put_counts[("m-a-refused", b"")] == 0
    assert rig.store.sync_states.for_lock("front")["m-a-refused"].attempts == 1


async def test_a_full_lock_reports_capacity_per_credential(rig: Rig) -> None:
    rig.sim.faults.full = True
    load(rig, [grant("g1", start=rig.clock.now())], [code("m1", "g1", "1234")])
    await rig.until(lambda: rig.states().get("m1") == ("failed", "capacity"))
    assert rig.held() == set()


async def test_offline_lock_is_retried_with_backoff_then_caught_up(rig: Rig) -> None:
    rig.sim.faults.offline = True
    load(rig, [grant("g1", start=rig.clock.now())], [code("m1", "g1", "1234")])
    await rig.until(lambda: rig.rec.health.last_error_code == "lock_offline")
    assert rig.states() == {}
    rig.sim.faults.offline = False
    rig.clock.advance(seconds=10)  # past the capped backoff
    await rig.until(lambda: rig.held() == {"m1"})
    assert rig.states()["m1"] == ("applied", None)


async def test_deleted_grant_comes_off(rig: Rig) -> None:
    load(rig, [grant("g1", start=rig.clock.now())], [code("m1", "g1", "1234")])
    await rig.until(lambda: rig.held() == {"m1"})
    load(rig, [], [])
    await rig.until(lambda: rig.held() == set() and rig.states() == {})


async def test_enforcing_lock_gets_codes_ahead_with_window(store: Store, clock: FakeClock) -> None:
    async with make_rig(store, clock, enforces_time_windows=True) as rig:
        g = grant("g1", start=clock.now() + timedelta(minutes=5))
        load(rig, [g], [code("m1", "g1", "1234")])
        await rig.until(lambda: rig.held() == {"m1"})  # lead time 600 s > 5 min
        stored = rig.sim.list_credentials()[0]
        assert stored.window is not None and stored.window.starts_at == g.starts_at
        # the lock itself refuses the code before its window
        assert not await rig.sim.enter_code("1234")
        assert rig.sim.log[-1].reason == "outside_window"
        clock.set(g.starts_at)  # type: ignore[arg-type]
        assert await rig.sim.enter_code("1234")


async def test_repush_writes_everything_again(rig: Rig) -> None:
    load(rig, [grant("g1", start=rig.clock.now())], [code("m1", "g1", "1234")])
    await rig.until(lambda: rig.held() == {"m1"})
    rig.rec.repush()
    await rig.until(lambda: sum(rig.sim.put_counts.values()) == 2)
    assert rig.states()["m1"] == ("applied", None)


async def test_window_enforcing_locks_get_their_clock_set_only_when_trusted(
    store: Store, clock: FakeClock
) -> None:
    trusted = False
    async with make_rig(store, clock, enforces_time_windows=True) as rig:
        rig.rec._clock_trusted = lambda: trusted
        rig.sim.faults.clock_drift_seconds = 600.0
        rig.rec.wake()
        passes = rig.rec.health.passes
        await rig.until(lambda: rig.rec.health.passes > passes)
        assert rig.sim.now() - clock.now() == timedelta(minutes=10)  # not from an untrusted clock
        trusted = True
        rig.rec.wake()
        await rig.until(lambda: rig.sim.now() == clock.now())


async def test_a_change_during_a_pass_gets_a_pass_of_its_own(rig: Rig) -> None:
    """The cloud changes while the lock is being written: that wake-up must not be lost."""
    gate = asyncio.Event()
    putting = asyncio.Event()
    driver = rig.rec.handle.driver
    real_put = driver.put_credentials

    async def slow_put(batch):  # type: ignore[no-untyped-def]
        putting.set()
        await gate.wait()
        return await real_put(batch)

    driver.put_credentials = slow_put  # type: ignore[method-assign]
    t = rig.clock.now()
    load(rig, [grant("g1", start=t)], [code("m1", "g1", "1111")])
    async with asyncio.timeout(WAIT):
        await putting.wait()
    load(
        rig,
        [grant("g1", start=t), grant("g2", start=t)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )
    gate.set()
    await rig.until(lambda: rig.held() == {"m1", "m2"})


async def drifted(rig: Rig) -> None:
    """Someone takes a code off the lock behind the gateway's back (or its memory fails)."""
    t = rig.clock.now()
    load(rig, [grant("g1", start=t - timedelta(minutes=1), hours=48)], [code("m1", "g1", "2468")])
    await rig.until(lambda: rig.held() == {"m1"} and rig.rec.health.passes >= 1)
    rig.sim.delete(["m1"])


async def test_drift_is_read_back_and_repaired_every_event_poll(rig: Rig) -> None:
    await drifted(rig)
    rig.clock.advance(seconds=31)  # event_poll_s (30 s by default)
    await rig.until(lambda: rig.held() == {"m1"})


async def test_a_lock_only_the_gateway_writes_is_read_back_less_often_but_still_repaired(
    store: Store, clock: FakeClock
) -> None:
    async with make_rig(store, clock, written_only_by_gateway=True) as rig:
        await drifted(rig)
        # Past event_poll_s: no read-back (nothing but the gateway can have changed the codes).
        # A new audit-log entry makes a pass that reads the log, not the codes.
        rig.clock.advance(seconds=31)
        assert await rig.sim.enter_code("9999") is False  # an entry in the lock's log
        rig.rec.events_waiting()  # as the lock's driver signals it
        await rig.until(lambda: rig.sim.log == [])  # read and acknowledged
        assert rig.held() == set()
        rig.clock.advance(seconds=900)  # reconcile.verify_s: read back, repaired
        await rig.until(lambda: rig.held() == {"m1"})
