"""The Nuki driver against the simulated Nuki lock, through the real bleak API on the radio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.nuki.gatt import NukiBleLock

from drivers.base import (
    BoltState,
    Credential,
    CredentialKind,
    DriverContext,
    EventKind,
    TimeWindow,
)
from drivers.errors import (
    CodeRuleError,
    DriverConfigError,
    DuplicateCodeError,
    LockAuthError,
    LockLinkError,
    OutcomeUnknownError,
)
from drivers.nuki.codes import FOREIGN
from drivers.nuki.driver import NukiDriver, keys_name, pin_name
from drivers.nuki.messages import CodeWindow, LockState
from drivers.nuki.wire import Command
from drivers.secrets import create_secret_file
from gateway.clock import FakeClock
from lockgate.testing import DriverConformance
from tests.ble.conftest import Adapter, MemoryKeyStore, ble_driver, ble_lock
from tests.nuki.conftest import nuki_driver

WAIT = 5.0


def lock_state(nuki: NukiBleLock) -> LockState:
    """The simulated lock's state, read afresh (mypy would keep an assert's narrowing across
    the awaits that change it)."""
    return nuki.model.lock_state


def code(cid: str, digits: str, window: TimeWindow | None = None, tag: bytes = b"") -> Credential:
    return Credential(
        cid, CredentialKind.CODE, digits.encode(), tag or cid.encode().ljust(8, b"_")[:8], window
    )


async def test_commission_pairs_and_keeps_keys_and_pin(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    keystore = MemoryKeyStore()
    async with nuki_driver(gateway, nuki, clock, keystore=keystore) as driver:
        assert driver.connected
        assert [a.name for a in nuki.model.auths.values()] == ["Lockgate"]
        assert keystore.get(keys_name(driver.lock_id)) is not None
        assert keystore.get(pin_name(driver.lock_id)) is not None
        status = await driver.status()
        assert status.bolt is BoltState.LOCKED
        assert status.battery_percent == 84
        assert status.lock_time == clock.now().replace(microsecond=0)
        assert driver.door is not None and driver.door.name == "CLOSED"


async def test_commission_with_a_wrong_pin_is_refused_and_keeps_no_pin(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    keystore = MemoryKeyStore()
    async with nuki_driver(gateway, nuki, clock, keystore=keystore, commission=False) as driver:
        with pytest.raises(LockAuthError, match="security PIN"):
            await driver.commission("1111")
        assert keystore.get(pin_name(driver.lock_id)) is None
        assert "1111" not in repr(keystore.data)
        assert nuki.engine.stats.bad_pin == 1
        # the pairing stays; the right PIN completes the commissioning without pairing again
        await driver.commission("4711")
        assert len(nuki.model.auths) == 1
        assert driver.connected


async def test_commission_needs_pairing_mode(
    radio: VirtualRadio, gateway: Adapter, clock: FakeClock
) -> None:
    from tests.nuki.conftest import nuki_lock

    async with (
        nuki_lock(radio, "Back", clock, pairing=False) as lock,
        nuki_driver(gateway, lock, clock, commission=False) as driver,
    ):
        with pytest.raises(LockAuthError, match="pairing mode"):
            await driver.commission("4711")
        assert not lock.model.auths


async def test_code_with_its_window_is_enforced_by_the_lock(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    now = clock.now()
    window = TimeWindow(now + timedelta(hours=1), now + timedelta(hours=3))
    async with nuki_driver(gateway, nuki, clock) as driver:
        result = await driver.put_credentials([code("m1", "482913", window)])
        assert result.ok
        [entry] = nuki.model.codes.values()
        assert entry.code == 482913
        assert entry.window == CodeWindow(window.starts_at, window.ends_at)
        [held] = await driver.list_credentials()
        assert (held.credential_id, held.tag, held.window) == ("m1", b"m1______", window)

        assert not nuki.type_code("482913")  # before the window
        clock.advance(hours=2)
        assert nuki.type_code("482913")
        assert lock_state(nuki) == LockState.UNLOCKED
        clock.advance(hours=2)
        assert not nuki.type_code("482913")  # after
        assert not nuki.type_code("999999")  # unknown

        page = await driver.fetch_events(0)
        kinds = [(e.kind, e.credential_id, e.reason) for e in page.events]
        assert kinds == [
            (EventKind.ACCESS_DENIED, "m1", "not_allowed_now"),
            (EventKind.ACCESS_ALLOWED, "m1", "valid_code"),
            (EventKind.ACCESS_DENIED, "m1", "not_allowed_now"),
            (EventKind.ACCESS_DENIED, None, "unknown_code"),
        ]
        assert all(e.decided_by == "lock" for e in page.events)
        assert not (await driver.fetch_events(page.next_seq)).events


async def test_put_replaces_in_place_and_delete_removes(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    now = clock.now()
    async with nuki_driver(gateway, nuki, clock) as driver:
        assert (await driver.put_credentials([code("m1", "482913")])).ok
        [first] = nuki.model.codes
        later = TimeWindow(now, now + timedelta(days=1))
        assert (await driver.put_credentials([code("m1", "482914", later, b"newtag__")])).ok
        assert list(nuki.model.codes) == [first]  # updated, not added
        assert nuki.model.codes[first].code == 482914
        [held] = await driver.list_credentials()
        assert held.tag == b"newtag__"
        assert (await driver.delete_credentials(["m1", "never-there"])).ok
        assert nuki.model.codes == {}


async def test_rule_breaking_codes_are_refused_before_any_radio_traffic(
    radio: VirtualRadio, gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    async with nuki_driver(gateway, nuki, clock) as driver:
        await driver.disconnect()
        sealed, connects = nuki.engine.stats.sealed_in, nuki.stats.connections
        radio.air.reset()
        result = await driver.put_credentials(
            [code("zero", "482903"), code("twelve", "123456"), code("short", "48291")]
        )
        assert set(result.failures) == {"zero", "twelve", "short"}
        assert all(isinstance(e, CodeRuleError) for e in result.failures.values())
        assert nuki.engine.stats.sealed_in == sealed
        assert nuki.stats.connections == connects
        assert not radio.air.requests
        caps = await driver.capabilities()
        assert caps.code_problem("123456") == 'starts with "12"'
        assert caps.code_problem("482903") is not None
        assert caps.code_problem("482913") is None


async def test_a_duplicate_is_refused_per_credential(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    async with nuki_driver(gateway, nuki, clock) as driver:
        nuki.model.add_code(482913, "from the app", CodeWindow())
        result = await driver.put_credentials([code("m1", "482913"), code("m2", "482914")])
        assert isinstance(result.failures["m1"], DuplicateCodeError)
        assert set(result.failures) == {"m1"}
        held = {c.credential_id for c in await driver.list_credentials()}
        assert held == {"m2", f"{FOREIGN}1"}
        assert (await driver.delete_credentials([f"{FOREIGN}1"])).ok
        assert [e.code for e in nuki.model.codes.values()] == [482914]


async def test_fragmented_replies_are_reassembled(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    nuki.faults.fragment = 20
    async with nuki_driver(gateway, nuki, clock) as driver:
        assert (await driver.put_credentials([code("m1", "482913")])).ok
        assert [c.credential_id for c in await driver.list_credentials()] == ["m1"]
        await driver.unlock()
        assert lock_state(nuki) == LockState.UNLOCKED
        assert nuki.stats.indications > 3 * len(nuki.model.log)


@pytest.mark.parametrize("fault", ["drop_before_command", "drop_after_command"])
async def test_a_link_drop_mid_batch_adds_no_code_twice(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, fault: str
) -> None:
    batch = [code(f"m{i}", f"48291{i}") for i in range(1, 6)]
    async with nuki_driver(gateway, nuki, clock) as driver:
        # list (2 commands), then challenge + add per code: drop on the third add
        setattr(nuki.faults, fault, 2 + 2 * 2 + 1)
        result = await driver.put_credentials(batch)
        assert result.ok
        assert nuki.stats.links_dropped == 1
        assert sorted(e.code for e in nuki.model.codes.values()) == [
            482911,
            482912,
            482913,
            482914,
            482915,
        ]
        held = sorted(c.credential_id for c in await driver.list_credentials())
        assert held == ["m1", "m2", "m3", "m4", "m5"]


async def test_a_restarted_driver_finds_its_codes(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    keystore = MemoryKeyStore()
    async with nuki_driver(gateway, nuki, clock, keystore=keystore, op_attempts=1) as driver:
        nuki.faults.drop_after_command = 3  # the add is done, its answer is lost
        with pytest.raises(LockLinkError):  # the gateway retries the batch later
            await driver.put_credentials([code("m1", "482913")])
        assert len(nuki.model.codes) == 1
    ctx = DriverContext(now=clock.now, keystore=keystore)
    driver2 = NukiDriver("Front", driver.options, ctx, adapters=gateway.registry, clock=clock)
    async with driver2:
        assert [c.credential_id for c in await driver2.list_credentials()] == ["m1"]
        assert (await driver2.put_credentials([code("m1", "482913")])).ok
        assert len(nuki.model.codes) == 1


async def test_lock_and_unlock(gateway: Adapter, nuki: NukiBleLock, clock: FakeClock) -> None:
    async with nuki_driver(gateway, nuki, clock) as driver:
        await driver.unlock()
        assert lock_state(nuki) == LockState.UNLOCKED
        await driver.lock()
        assert lock_state(nuki) == LockState.LOCKED
        await driver.unlatch()
        assert lock_state(nuki) == LockState.UNLATCHED
        page = await driver.fetch_events(0)
        assert [e.kind for e in page.events] == [
            EventKind.UNLOCKED,
            EventKind.LOCKED,
            EventKind.UNLOCKED,
        ]
        await driver.set_time(clock.now() + timedelta(minutes=5))
        assert nuki.engine.time_skew == timedelta(minutes=5)
        async with asyncio.timeout(WAIT):
            await driver.disconnect()


class TestNukiConformance(DriverConformance):
    """The kit driver authors run (lockgate.testing), on the Nuki driver and simulated lock."""

    @pytest.fixture
    async def driver(
        self, gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
    ) -> AsyncIterator[NukiDriver]:
        async with nuki_driver(gateway, nuki, clock) as d:
            yield d


async def test_the_beacon_tells_the_gateway_of_new_log_entries(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    waiting = asyncio.Event()
    ctx = DriverContext(now=clock.now, keystore=MemoryKeyStore(), events_waiting=waiting.set)
    async with nuki_driver(gateway, nuki, clock, ctx=ctx) as driver:
        await driver.disconnect()
        waiting.clear()
        assert not nuki.state_changed
        assert not nuki.type_code("999999")  # someone at the keypad, the gateway away
        async with asyncio.timeout(WAIT):
            await waiting.wait()
        [event] = (await driver.fetch_events(0)).events
        assert (event.kind, event.reason) == (EventKind.ACCESS_DENIED, "unknown_code")


async def test_a_nuki_and_a_lockgate_ble_lock_share_one_adapter(
    radio: VirtualRadio, gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    async with (
        ble_lock(radio, "side", clock) as side,
        ble_driver(gateway, side, clock) as ble,  # scanning for the Lockgate service first
        nuki_driver(gateway, nuki, clock) as driver,  # then unfiltered, for the Nuki beacon
    ):
        adapter = gateway.registry.get("default")
        assert adapter is not None and adapter.scanner.running
        assert (await driver.put_credentials([code("m1", "482913")])).ok
        assert (await ble.put_credentials([code("m2", "482914")])).ok
        await ble.disconnect()
        await driver.disconnect()
        assert [c.credential_id for c in await ble.list_credentials()] == ["m2"]
        assert [c.credential_id for c in await driver.list_credentials()] == ["m1"]
        assert gateway.central.peak_connections <= 2


async def test_a_lock_that_forgot_the_gateway_is_paired_again(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    keystore = MemoryKeyStore()
    async with nuki_driver(gateway, nuki, clock, keystore=keystore) as driver:
        first = keystore.get(keys_name(driver.lock_id))
        nuki.model.auths.clear()  # reset, or the gateway removed in the Nuki app
        await driver.disconnect()
        with pytest.raises(LockAuthError, match="not in pairing mode"):
            await driver.commission("4711")
        nuki.press_pairing_button()
        await driver.commission("4711")
        assert list(nuki.model.auths) == [3]
        assert keystore.get(keys_name(driver.lock_id)) != first
        assert (await driver.put_credentials([code("m1", "482913")])).ok


async def test_an_unconfirmed_unlatch_is_not_sent_again(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    async with nuki_driver(gateway, nuki, clock) as driver:
        nuki.faults.drop_after_command = 1  # the challenge answered, the action not
        with pytest.raises(OutcomeUnknownError):
            await driver.unlatch()
        assert lock_state(nuki) == LockState.UNLATCHED  # the lock did it, once
        assert nuki.engine.stats.commands[Command.LOCK_ACTION] == 1
        nuki.faults.drop_before_command = 1  # not even sent: the same answer, nothing done
        nuki.model.lock_state = LockState.LOCKED
        with pytest.raises(OutcomeUnknownError):
            await driver.unlock()
        assert lock_state(nuki) == LockState.LOCKED
        await driver.unlock()  # asked again by someone: works
        assert lock_state(nuki) == LockState.UNLOCKED


async def test_the_security_pin_from_a_file(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, tmp_path: Path
) -> None:
    pin_file = tmp_path / "front.pin"
    create_secret_file(pin_file, b"4711\n")
    keystore = MemoryKeyStore()
    async with nuki_driver(
        gateway, nuki, clock, keystore=keystore, commission=False, security_pin={"file": pin_file}
    ) as driver:
        with pytest.raises(LockAuthError, match="differs"):
            await driver.commission("1111")
        assert not nuki.model.auths  # refused before any radio traffic
        await driver.commission("4711")
        assert (await driver.put_credentials([code("m1", "482913")])).ok
        pin_file.chmod(0o644)
        await driver.disconnect()
        with pytest.raises(DriverConfigError, match="readable by group or others"):
            await driver.put_credentials([code("m2", "482914")])
