"""The BLE driver against simulated locks, through the real bleak API over the virtual radio."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from bleak import BleakClient
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio

from drivers.base import (
    AccessAnswer,
    AccessRequest,
    BoltState,
    Credential,
    CredentialKind,
    DriverContext,
    EventKind,
    TimeWindow,
)
from drivers.ble.driver import BleDriver
from drivers.ble.errors import ImpostorError
from drivers.errors import LockAuthError, LockOfflineError, OutcomeUnknownError
from drivers.lockproto.keys import keystore_name
from gateway.clock import FakeClock
from tests.ble.conftest import WAIT, Adapter, MemoryKeyStore, adapter_on, ble_driver, ble_lock

CODE = CredentialKind.CODE


def codes(
    n: int, *, prefix: str = "m", start: int = 100000, window: TimeWindow | None = None
) -> list[Credential]:
    return [
        Credential(f"{prefix}{i}", CODE, str(start + i).encode(), os.urandom(8), window)
        for i in range(n)
    ]


async def test_operations_over_gatt(gateway: Adapter, lock: BleLock, clock: FakeClock) -> None:
    async with ble_driver(gateway, lock, clock) as d:
        assert d.connected
        caps = await d.capabilities()
        assert caps.enforces_time_windows
        assert CredentialKind.MOBILE_KEY in caps.kinds
        window = TimeWindow(clock.now(), clock.now() + timedelta(hours=1))
        result = await d.put_credentials(codes(3, window=window))
        assert result.ok
        held = {c.credential_id: c for c in await d.list_credentials()}
        assert set(held) == {"m0", "m1", "m2"}
        assert held["m0"].window == window
        assert (await d.delete_credentials(["m1", "not-there"])).ok
        assert {c.credential_id for c in await d.list_credentials()} == {"m0", "m2"}
        await d.unlock(5)
        assert lock.lock.bolt is BoltState.UNLOCKED
        await d.lock()
        status = await d.status()
        assert status.bolt is BoltState.LOCKED
        assert status.firmware == lock.lock.spec.firmware
        await d.set_time(clock.now() + timedelta(seconds=30))
        assert lock.lock.now() == clock.now() + timedelta(seconds=30)
        page = await d.fetch_events(0)
        assert [e.kind for e in page.events] == [EventKind.UNLOCKED, EventKind.LOCKED]
        await d.ack_events(page.next_seq)
        assert lock.lock.log == []
        assert d.conn.stats.connects == 1  # one link carried all of it


async def test_an_uncommissioned_lock_is_refused(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    async with ble_driver(gateway, lock, clock, commission=False) as d:
        with pytest.raises(LockAuthError, match="not commissioned"):
            await d.connect()
        with pytest.raises(LockAuthError):
            await d.commission("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AA")
        assert not d.connected


async def test_a_different_lock_at_the_address_is_refused(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    keystore = MemoryKeyStore()
    async with ble_driver(gateway, lock, clock, keystore=keystore):
        pass
    async with ble_lock(radio, "impostor", clock) as impostor:
        # the config points at the impostor's address, the stored keys at the real lock
        keystore.data[keystore_name("impostor")] = keystore.data[keystore_name("front")]
        async with ble_driver(
            gateway,
            impostor,
            clock,
            lock_id="impostor",
            keystore=keystore,
            commission=False,
            address=impostor.address,
            device_id=None,
        ) as d:
            # configured by address: nothing else to try; a link error (retried with the usual
            # backoff, not the longest), never "commission it again"
            with pytest.raises(ImpostorError, match="different lock"):
                await d.connect()
            assert d.conn.stats.impostors == 4  # op_attempts x connect_attempts


async def test_mtu_23_still_carries_big_batches(
    radio: VirtualRadio, gateway: Adapter, clock: FakeClock
) -> None:
    async with (
        ble_lock(radio, "small", clock, max_mtu=23) as lock,
        ble_driver(gateway, lock, clock) as d,
    ):
        assert (await d.put_credentials(codes(100))).ok
        assert len(await d.list_credentials()) == 100
        link = d.carrier.link
        assert link is not None
        assert link.segment_size == 20
        assert d.carrier.stats.segments_sent > 100  # one PUT of ~3 kB in 20-byte segments


async def test_lost_notifications_are_retransmitted(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    # BLE acknowledges packets at the link layer: notifications go missing in bursts (a host
    # buffer overrun, a link hiccup), and the session retransmits the whole request
    async with ble_driver(gateway, lock, clock) as d:
        assert d.session is not None
        lock.faults.lose_next_notifications = 2  # the PUT's reply, then its first repeat
        assert (await d.put_credentials(codes(100))).ok
        lock.faults.lose_next_notifications = 1  # the first of the LIST reply's 6 segments
        assert len(await d.list_credentials()) == 100
        lock.faults.lose_every_notification = 3
        for _ in range(6):
            assert (await d.status()).bolt is BoltState.LOCKED
        lock.faults.lose_every_notification = None
        assert lock.stats.notifications_lost >= 5
        assert d.session.stats.retransmissions >= lock.stats.notifications_lost - 1
        assert sum(lock.lock.put_counts.values()) == 100  # repeats answered from the cache
        assert d.carrier.reassembler.stats.refused_total >= 1  # the rest of the lost reply


async def test_link_dropped_mid_write_is_reconnected_and_the_batch_completes(
    radio: VirtualRadio, gateway: Adapter, clock: FakeClock
) -> None:
    async with (
        ble_lock(radio, "flaky", clock, max_mtu=23) as lock,
        ble_driver(gateway, lock, clock) as d,
    ):
        lock.faults.drop_link_after_segments = 40  # inside the PUT's ~150 segments
        assert (await d.put_credentials(codes(100))).ok
        assert lock.stats.links_dropped == 1
        assert {c.credential_id for c in lock.lock.list_credentials()} == {
            f"m{i}" for i in range(100)
        }
        assert d.conn.stats.connects == 2


async def test_a_sleepy_lock_is_waited_for(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    async with ble_driver(gateway, lock, clock, advert_fresh=0.001) as d:
        await d.disconnect()
        lock.faults.advertising_interval_ms = 300.0
        lock.refresh_advertising()
        # no advert is fresh enough: the driver waits for the next one, then connects
        assert (await d.put_credentials(codes(1))).ok
        assert d.conn.stats.connects == 2


async def test_a_vanished_lock_is_offline_and_announced_when_back(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    back = asyncio.Event()
    ctx = DriverContext(now=clock.now, keystore=MemoryKeyStore(), events_waiting=back.set)
    async with ble_driver(gateway, lock, clock, ctx=ctx, scan_timeout=0.2, connect_attempts=1) as d:
        await lock.power_off()
        with pytest.raises(LockOfflineError):
            await d.status()
        assert not d.connected
        back.clear()
        await lock.power_on()
        async with asyncio.timeout(WAIT):
            await back.wait()
        await d.connect()
        assert d.connected


async def test_idle_disconnect_and_keepalive_below_the_locks_timeout(
    radio: VirtualRadio, gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    # the lock drops a silent central after 20 s; the driver keeps its link alive every
    # min(15, 20 / 2) = 10 s and lets go after 30 s without an operation
    async with (
        ble_driver(gateway, lock, clock, keepalive=15.0, idle_disconnect=30.0) as d,
        adapter_on(radio, "someone-else") as other,
    ):
        silent = BleakClient(lock.address, backend=other.backends.client, timeout=1.0)
        await silent.connect()
        conn = d.conn
        t0 = clock.now()
        for n in (1, 2):
            clock.set(t0 + timedelta(seconds=10 * n))

            def kept_alive(n: int = n) -> bool:
                return conn.stats.keepalives == n

            async with asyncio.timeout(WAIT):
                await conn.wait_for(kept_alive)
        # at 20 s the lock dropped the silent central, not the gateway's kept-alive link
        async with asyncio.timeout(WAIT):
            await lock.wait_for(lambda: lock.stats.idle_disconnects == 1)
        assert d.link_up
        assert not silent.is_connected
        clock.set(t0 + timedelta(seconds=30))
        async with asyncio.timeout(WAIT):
            await conn.wait_for(lambda: not conn.link_up)
        assert conn.stats.idle_disconnects == 1
        assert d.connected  # in service: the next operation connects again
        assert (await d.put_credentials(codes(1))).ok
        assert conn.stats.connects == 2


async def test_operations_run_one_at_a_time(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    async with ble_driver(gateway, lock, clock) as d:
        batches = [codes(20, prefix=f"b{b}-", start=200000 + 100 * b) for b in range(5)]
        results = await asyncio.gather(*(d.put_credentials(b) for b in batches))
        assert all(r.ok for r in results)
        assert len(lock.lock.list_credentials()) == 100
        assert lock.engine.stats.duplicates == 0


async def test_an_access_request_makes_the_driver_connect_and_answer(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    asked: list[AccessRequest] = []

    async def decide(request: AccessRequest) -> AccessAnswer:
        asked.append(request)
        return AccessAnswer(request.secret == b"424242", "valid", "m-online")

    ctx = DriverContext(now=clock.now, keystore=MemoryKeyStore(), decide=decide)
    async with ble_driver(gateway, lock, clock, ctx=ctx) as d:
        await d.disconnect()  # idle: no link; the lock's advert flag brings the driver back
        async with asyncio.timeout(WAIT):
            assert await lock.lock.enter_code("424242")
        assert [(r.kind, r.secret) for r in asked] == [(CODE, b"424242")]
        assert d.decisions == 1
        assert lock.lock.log[-1].decided_by == "gateway"


async def test_new_audit_entries_wake_the_gateway(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    waiting = asyncio.Event()
    ctx = DriverContext(now=clock.now, keystore=MemoryKeyStore(), events_waiting=waiting.set)
    async with ble_driver(gateway, lock, clock, ctx=ctx) as d:
        await d.ack_events((await d.fetch_events(0)).next_seq)
        waiting.clear()
        lock.lock.lock()  # a local event: the lock's advert says it holds unread entries
        async with asyncio.timeout(WAIT):
            await waiting.wait()
        page = await d.fetch_events(0)
        assert page.events[-1].kind is EventKind.LOCKED


def test_options_need_an_identity() -> None:
    from pydantic import ValidationError

    from drivers.ble.options import BleOptions

    with pytest.raises(ValidationError, match="address or its device_id"):
        BleOptions()
    with pytest.raises(ValidationError, match="16 hex"):
        BleOptions(device_id="abc")
    assert BleOptions(address="AA:BB:CC:DD:EE:FF").type == "ble"
    assert BleDriver.options_model is BleOptions
    assert datetime(2026, 1, 1, tzinfo=UTC)


async def test_pair_bonds_with_le_secure_connections_under_the_session(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    async with ble_driver(gateway, lock, clock, pair=True) as d:
        assert (await d.put_credentials(codes(3))).ok
        (link,) = lock.device.connections.values()
        assert link.is_encrypted  # the radio link is encrypted, and the session seals inside it
        assert d.session is not None
        assert d.session.stats.handshakes == 1


async def test_an_unlock_whose_answers_are_lost_is_not_sent_again_on_a_new_link(
    gateway: Adapter, lock: BleLock, clock: FakeClock
) -> None:
    # the lock unlocks; both answers (the first and the repeat's, from its reply cache) are
    # lost. A new link means a new session, where nothing would stop a second unlock: the
    # driver reports the outcome as unknown instead of trying the operation again
    async with ble_driver(gateway, lock, clock, attempts=2) as d:
        await d.status()
        lock.faults.lose_next_notifications = 2
        with pytest.raises(OutcomeUnknownError, match="unlock was sent"):
            await d.unlock(None)
        unlocked = [e for e in lock.lock.log if e.kind is EventKind.UNLOCKED]
        assert len(unlocked) == 1
        assert lock.lock.bolt is BoltState.UNLOCKED
        assert (await d.status()).bolt is BoltState.UNLOCKED  # the next operation is fine
