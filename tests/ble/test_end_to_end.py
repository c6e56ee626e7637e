"""The gateway's flow with locks on BLE: a LockReconciler over the BleDriver, a Store, the
offline validator with the mobile-key proof check, simulated locks and a simulated phone on
the virtual radio, and a fake clock that moves instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.phone import SimPhone, replay
from lockgate_sim.ble.radio import VirtualRadio

from drivers.base import AccessAnswer, AccessRequest, CredentialKind, DriverContext
from drivers.ble.driver import BleDriver
from gateway.clock import FakeClock
from gateway.config import ReconcileConfig, TimeConfig, ValidatorConfig
from gateway.handle import LockHandle
from gateway.lockout import LockoutPolicy
from gateway.mobilekeys import proof_check_for
from gateway.models import AccessMethod, Grant
from gateway.planner import LockScope
from gateway.reconciler import LockHealth, LockReconciler
from gateway.store.store import Store
from gateway.timetrust import TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache
from tests.ble.conftest import WAIT, Adapter, adapter_on, ble_driver, ble_lock
from tests.core.conftest import snapshot
from tests.core.factories import code, grant

SCOPE_SPACES = frozenset({"space-a"})


def mobile_key(mid: str, gid: str, phone: SimPhone) -> AccessMethod:
    """As gateway/cloud/models.py makes it from the cloud's ``mobile_key`` extension."""
    return AccessMethod(mid, gid, "mobile_key", secret=phone.public_key_text.encode())


def make_validator(store: Store, clock: FakeClock, lock_ids: list[str]) -> Validator:
    time_cfg = TimeConfig()
    return Validator(
        store,
        ViewCache(store).current,
        {lid: LockScope(lid, SCOPE_SPACES, frozenset(), frozenset()) for lid in lock_ids},
        clock,
        TimeTrust(clock, store.meta, time_cfg, kernel=lambda: True),
        time_cfg,
        LockoutPolicy(store.lockouts, ValidatorConfig()),
        proof_check=proof_check_for(store),
    )


def decider(validator: Validator, lock_id: str) -> Callable[[AccessRequest], object]:
    # what gateway/daemon.py does for every lock
    async def decide(request: AccessRequest) -> AccessAnswer:
        d = validator.decide(request.kind, request.secret, lock_id, proof=request.proof)
        return AccessAnswer(d.allow, d.reason, d.access_method_id)

    return decide


@dataclass
class Rig:
    rec: LockReconciler
    driver: BleDriver
    lock: BleLock
    store: Store
    clock: FakeClock
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def held(self) -> set[str]:
        return {c.credential_id for c in self.lock.lock.list_credentials()}

    def states(self) -> dict[str, tuple[str, str | None]]:
        return {
            k: (v.state.value, v.error_code)
            for k, v in self.store.sync_states.for_lock(self.rec.lock_id).items()
        }

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            await self.rec.wait_for(predicate)


def load(
    store: Store,
    clock: FakeClock,
    rigs: list[Rig],
    grants: list[Grant],
    methods: list[AccessMethod],
) -> None:
    store.cloud.apply_snapshot(snapshot(grants, methods), clock.now())
    for rig in rigs:
        rig.rec.wake()


@contextlib.asynccontextmanager
async def reconciled(
    adapter: Adapter,
    lock: BleLock,
    store: Store,
    clock: FakeClock,
    validator: Validator,
    **options: object,
) -> AsyncIterator[Rig]:
    lock_id = lock.name
    holder: list[LockReconciler] = []
    ctx = DriverContext(
        now=clock.now,
        keystore=store.keystore(lock_id),
        decide=decider(validator, lock_id),  # type: ignore[arg-type]
        events_waiting=lambda: holder[0].events_waiting() if holder else None,
    )
    async with ble_driver(adapter, lock, clock, ctx=ctx, **options) as driver:  # type: ignore[arg-type]
        rec = LockReconciler(
            LockHandle(driver),
            LockScope(lock_id, SCOPE_SPACES, frozenset(), frozenset()),
            store,
            ViewCache(store).current,
            clock,
            ReconcileConfig(lead_time_s=600, retry_min_s=1, retry_max_s=8),
        )
        holder.append(rec)
        task = asyncio.create_task(rec.run(), name=f"rec:{lock_id}")
        try:
            yield Rig(rec, driver, lock, store, clock, [task])
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# --- codes ---------------------------------------------------------------------------------------
async def test_codes_go_on_ahead_with_their_window_and_come_off(
    gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    async with reconciled(gateway, lock, store, clock, v) as rig:
        t = clock.now()
        g = grant("g1", start=t + timedelta(minutes=5), hours=1)
        load(store, clock, [rig], [g], [code("m1", "g1", "123456"), code("m2", "g1", "654321")])
        await rig.until(lambda: rig.held() == {"m1", "m2"})  # lead time 10 min > 5 min
        await rig.until(lambda: set(rig.states().values()) == {("applied", None)})
        # the BLE lock enforces the window itself, offline
        assert not await lock.lock.enter_code("123456")
        assert lock.lock.log[-1].reason == "outside_window"
        clock.set(g.starts_at)  # type: ignore[arg-type]
        assert await lock.lock.enter_code("123456")
        clock.set(g.ends_at)  # type: ignore[arg-type]
        await rig.until(lambda: rig.held() == set() and rig.states() == {})


async def test_link_dropped_in_the_middle_of_a_200_code_batch(
    gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    # op_attempts=1: the driver gives up on the dropped link and the reconciler retries
    async with reconciled(gateway, lock, store, clock, v, op_attempts=1) as rig:
        t = clock.now()
        old = [code(f"old{i}", "g0", f"{500000 + i}") for i in range(10)]
        load(store, clock, [rig], [grant("g0", start=t)], old)
        await rig.until(lambda: rig.held() == {m.method_id for m in old})
        new = [code(f"new{i:03d}", "g1", f"{700000 + i}") for i in range(200)]
        lock.faults.drop_link_after_segments = 25  # inside the second PUT of 100 codes
        load(store, clock, [rig], [grant("g1", start=t)], new)
        await rig.until(lambda: rig.rec.health.last_error_code is not None)
        assert lock.stats.links_dropped == 1
        assert rig.held() != {m.method_id for m in new}  # the pass broke half-way
        clock.advance(10)  # past the reconciler's backoff
        await rig.until(lambda: set(rig.states().values()) == {("applied", None)})
        assert rig.held() == {m.method_id for m in new}  # exactly the desired set
        assert len(rig.states()) == 200
        assert max(lock.lock.put_counts.values()) <= 2  # at most the broken batch again


async def test_a_lock_gone_for_a_minute_is_caught_up_when_it_advertises_again(
    gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    async with reconciled(
        gateway, lock, store, clock, v, scan_timeout=0.2, connect_attempts=1
    ) as rig:
        t = clock.now()
        load(store, clock, [rig], [grant("g1", start=t)], [code("m1", "g1", "1111")])
        await rig.until(lambda: rig.held() == {"m1"})
        await lock.power_off()
        methods = [code("m1", "g1", "1111")] + [
            code(f"m{i}", "g1", f"{i}{i}{i}{i}") for i in (2, 3)
        ]
        load(store, clock, [rig], [grant("g1", start=t)], methods)
        await rig.until(lambda: rig.rec.health.last_error_code == "lock_offline")
        for _ in range(6):  # a minute of the reconciler's backoff, on the fake clock
            before = rig.rec.health
            clock.advance(10)

            def another_pass(before: LockHealth = before) -> bool:
                return rig.rec.health is not before

            await rig.until(another_pass)
            assert rig.rec.health.last_error_code == "lock_offline"
        assert rig.held() == {"m1"}
        # it comes back: its advertisement wakes the gateway, no backoff to wait out
        await lock.power_on()
        await rig.until(lambda: rig.held() == {"m1", "m2", "m3"})
        await rig.until(lambda: set(rig.states().values()) == {("applied", None)})
        assert rig.rec.health.last_error_code is None


async def test_five_locks_share_two_connections(
    radio: VirtualRadio, gateway: Adapter, store: Store, clock: FakeClock
) -> None:
    ids = [f"door{i}" for i in range(5)]
    v = make_validator(store, clock, ids)
    async with contextlib.AsyncExitStack() as stack:
        rigs = []
        for lock_id in ids:
            lock = await stack.enter_async_context(ble_lock(radio, lock_id, clock))
            rigs.append(
                await stack.enter_async_context(
                    reconciled(gateway, lock, store, clock, v, max_connections=2)
                )
            )
        t = clock.now()
        methods = [code(f"m{i:02d}", "g1", f"{300000 + i}") for i in range(20)]
        load(store, clock, rigs, [grant("g1", start=t)], methods)
        want = {m.method_id for m in methods}
        for rig in rigs:

            def holds_all(r: Rig = rig) -> bool:
                return r.held() == want

            await rig.until(holds_all)
        adapter = gateway.registry.get("default")
        assert adapter is not None
        assert adapter.slots.peak == 2
        assert adapter.slots.waits > 0  # they did take turns
        assert gateway.central.peak_connections <= 2  # counted by the radio itself


# --- mobile keys ---------------------------------------------------------------------------------
async def test_mobile_key_opens_inside_its_window_only_and_replays_fail(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    async with adapter_on(radio, "alice-phone") as phone_radio:
        phone = SimPhone("alice", phone_radio.backends)
        async with reconciled(gateway, lock, store, clock, v) as rig:
            t = clock.now()
            g = grant("g1", start=t + timedelta(minutes=5), hours=1)
            load(store, clock, [rig], [g], [mobile_key("mk1", "g1", phone)])
            await rig.until(lambda: rig.held() == {"mk1"})
            slot = lock.lock.list_credentials()[0]
            assert slot.kind is CredentialKind.MOBILE_KEY
            assert slot.window is not None and slot.window.starts_at == g.starts_at

            result = await phone.open(device_id=lock.device_id)
            assert (result.allow, result.reason) == (False, "outside_window")
            clock.set(g.starts_at)  # type: ignore[arg-type]
            result = await phone.open(device_id=lock.device_id)
            assert (result.allow, result.reason) == (True, "valid")
            assert lock.lock.log[-1].decided_by == "lock"

            # someone recorded that exchange off the air and plays it back
            async with adapter_on(radio, "mallory") as attacker:
                replayed = await replay(
                    attacker.backends, phone.history[-1], device_id=lock.device_id
                )
            assert (replayed.allow, replayed.reason) == (False, "bad_proof")

            assert g.ends_at is not None
            clock.set(g.ends_at - timedelta(seconds=1))
            assert (await phone.open(device_id=lock.device_id)).allow
            clock.set(g.ends_at)
            # the lock refuses on its own clock, whether or not the gateway removed it yet
            result = await phone.open(device_id=lock.device_id)
            assert not result.allow
            assert result.reason == "outside_window"


async def test_mobile_key_works_offline_and_revocation_removes_it(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    async with adapter_on(radio, "bob-phone") as phone_radio:
        phone = SimPhone("bob", phone_radio.backends)
        t = clock.now()
        g = grant("g1", start=t, hours=8)
        async with reconciled(gateway, lock, store, clock, v):
            load(store, clock, [], [g], [mobile_key("mk1", "g1", phone)])
            async with asyncio.timeout(WAIT):
                await lock.wait_for(lambda: len(lock.lock.list_credentials()) == 1)
        # the gateway (and with it the cloud link) is gone: the lock decides alone
        result = await phone.open(device_id=lock.device_id)
        assert (result.allow, result.reason) == (True, "valid")
        assert lock.lock.log[-1].decided_by == "lock"

        async with reconciled(gateway, lock, store, clock, v) as rig:
            # revoking the access method: the grant no longer lists it
            load(store, clock, [rig], [g], [])
            await rig.until(lambda: rig.held() == set())
            # the lock no longer knows the key and asks the gateway, which says revoked
            result = await phone.open(device_id=lock.device_id)
            assert (result.allow, result.reason) == (False, "revoked")
            assert lock.lock.log[-1].decided_by == "gateway"
            assert rig.driver.decisions == 1


async def test_a_lock_without_the_key_forwards_the_proof_to_the_gateway(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, store: Store, clock: FakeClock
) -> None:
    v = make_validator(store, clock, ["front"])
    async with adapter_on(radio, "carol-phone") as phone_radio:
        phone = SimPhone("carol", phone_radio.backends)
        store.cloud.apply_snapshot(
            snapshot([grant("g1", start=clock.now())], [mobile_key("mk1", "g1", phone)]),
            clock.now(),
        )
        ctx = DriverContext(
            now=clock.now,
            keystore=store.keystore("front"),
            decide=decider(v, "front"),  # type: ignore[arg-type]
        )
        # commissioned and listening, but nothing pushed: the lock holds no key at all
        async with ble_driver(gateway, lock, clock, ctx=ctx) as driver:
            result = await phone.open(device_id=lock.device_id)
            assert (result.allow, result.reason) == (True, "valid")
            assert lock.lock.log[-1].decided_by == "gateway"
            assert driver.decisions == 1
            async with adapter_on(radio, "mallory") as attacker:
                replayed = await replay(
                    attacker.backends, phone.history[-1], device_id=lock.device_id
                )
            assert (replayed.allow, replayed.reason) == (False, "bad_proof")
