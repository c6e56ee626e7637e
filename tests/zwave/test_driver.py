"""The zwave driver against zwave-js's mock locks through a real Z-Wave JS server (no S2).

What the locks hold is read through the rig's control channel, not through the driver.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from lockgate_sim.zwave_rig import ZWaveRig

from drivers.base import BoltState, Credential, CredentialKind, EventKind, TimeWindow
from drivers.errors import CapacityError, DuplicateCodeError, LockTimeoutError
from drivers.zwave.connection import ServerRegistry
from drivers.zwave.usercodes import UserCodes
from gateway.clock import FakeClock
from lockgate.testing.conformance import check_driver

from .conftest import WAIT, MemoryKeyStore, make_driver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
RIG_LOCKS = 4


def code(cid: str, pin: str, window: TimeWindow | None = None) -> Credential:
    return Credential(
        cid, CredentialKind.CODE, pin.encode(), tag=cid.encode()[:8].ljust(8, b"."), window=window
    )


async def test_capabilities_come_from_the_lock(rig: ZWaveRig) -> None:
    async with make_driver(rig, 2) as driver:
        await driver.connect()
        caps = await driver.capabilities()
    assert caps.slots == 30
    assert caps.code_alphabet == "0123456789"
    assert (caps.code_min_length, caps.code_max_length) == (4, 10)
    assert caps.enforces_time_windows  # Schedule Entry Lock year-day + Time Parameters
    assert caps.kinds == frozenset({CredentialKind.CODE})
    assert not caps.online_validation


async def test_put_replace_delete_slot_by_slot(rig: ZWaveRig) -> None:
    keystore = MemoryKeyStore()
    async with make_driver(rig, 2, keystore=keystore) as driver:
        result = await driver.put_credentials([code("m-1", "135790"), code("m-2", "246801")])
        assert result.ok
        slots = await rig.slots(2)
        assert sorted(c for _, c in slots.values()) == ["135790", "246801"]
        held = {c.credential_id: c.tag for c in await driver.list_credentials()}
        assert held == {"m-1": b"m-1.....", "m-2": b"m-2....."}

        # Replace: same credential, new code, same slot.
        (slot_1,) = [s for s, (_, c) in slots.items() if c == "135790"]
        assert (await driver.put_credentials([code("m-1", "11223344")])).ok
        assert (await rig.slots(2))[slot_1] == (1, "11223344")

        assert (await driver.delete_credentials(["m-1", "never-there"])).ok
        assert slot_1 not in await rig.slots(2)
        assert [c.credential_id for c in await driver.list_credentials()] == ["m-2"]

    # A restart of the driver (same store) neither loses nor rewrites the code.
    writes_before = len(await rig.set_log(2))
    async with make_driver(rig, 2, keystore=keystore) as driver:
        assert [c.credential_id for c in await driver.list_credentials()] == ["m-2"]
        assert (await driver.delete_credentials(["m-2"])).ok
    log = await rig.set_log(2)
    assert all(status == 0 for _, status, _ in log[writes_before:])  # only the clear
    assert await rig.slots(2) == {}
    assert "135790" not in repr(keystore.data) and "246801" not in repr(keystore.data)


async def test_refused_and_full_are_per_credential(rig: ZWaveRig) -> None:
    await rig.program(3, 1, "555555")  # the owner's own code, typed in at the keypad
    async with make_driver(rig, 3, slot_count=3) as driver:
        creds = [code("a", "555555"), code("b", "600001"), code("c", "600002"), code("d", "600003")]
        result = await driver.put_credentials(creds)
        assert set(result.failures) == {"a", "d"}
        assert isinstance(result.failures["a"], DuplicateCodeError)
        assert isinstance(result.failures["d"], CapacityError)
        assert result.failures["a"].credential_id == "a"
        assert "555555" not in str(result.failures["a"])
        held = {c.credential_id for c in await driver.list_credentials()}
        assert held == {"b", "c"}
        slots = await rig.slots(3)
        assert slots[1] == (1, "555555")  # the owner's code was left alone
        assert {c for _, c in slots.values()} == {"555555", "600001", "600002"}
        assert (await driver.delete_credentials(["b", "c"])).ok
    assert await rig.slots(3) == {1: (1, "555555")}


async def test_keypad_events_name_the_credential(rig: ZWaveRig) -> None:
    waiting = asyncio.Event()
    async with make_driver(rig, 4) as driver:
        driver.ctx.events_waiting = waiting.set
        assert (await driver.put_credentials([code("k-1", "97531")])).ok
        waiting.clear()
        assert (await rig.press(4, "97531"))["opened"]
        async with asyncio.timeout(WAIT):
            await waiting.wait()
        page = await driver.fetch_events(0)
        (event,) = [e for e in page.events if e.kind is EventKind.ACCESS_ALLOWED]
        assert event.credential_id == "k-1"
        assert event.credential_kind is CredentialKind.CODE
        await driver.ack_events(page.next_seq)
        assert (await driver.fetch_events(page.next_seq)).events == []
        assert (await driver.status()).bolt is BoltState.UNLOCKED
        await driver.lock()
        status = await driver.status()
        assert status.bolt is BoltState.LOCKED
        assert status.battery_percent == 87
        await driver.unlock(hold_seconds=5)  # Door Lock timed operation: relocks by itself
        door = await rig.lock_state(4)
        assert (door["door_mode"], door["door_timeout"]) == (0x01, 5)
        assert (await driver.status()).bolt is BoltState.UNLOCKED
        assert (await driver.delete_credentials(["k-1"])).ok


async def test_windows_go_onto_the_lock_and_the_clock_is_set(rig: ZWaveRig) -> None:
    now = datetime.now(UTC)
    past = TimeWindow(now - timedelta(days=3), now - timedelta(days=1))
    current = TimeWindow(now - timedelta(hours=1), now + timedelta(hours=1))
    async with make_driver(rig, 4) as driver:
        await driver.set_time(now)
        assert (
            await driver.put_credentials(
                [code("w-old", "31415", past), code("w-now", "27182", current)]
            )
        ).ok
        state = await rig.lock_state(4)
        assert state["clock_set"]
        windows = {v["code"]: v["window"] for v in state["slots"].values()}
        assert windows["31415"][1].startswith((now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        assert not (await rig.press(4, "31415"))["opened"]  # the lock itself refuses it
        assert (await rig.press(4, "27182"))["opened"]
        assert (await driver.delete_credentials(["w-old", "w-now"])).ok


async def test_a_silent_node_fails_its_credentials_not_the_others(rig: ZWaveRig) -> None:
    servers = ServerRegistry()  # both locks on one shared connection
    async with (
        make_driver(rig, 3, servers=servers, command_timeout=5.0) as silent,
        make_driver(rig, 4, servers=servers) as healthy,
    ):
        await silent.capabilities()
        await silent.list_credentials()
        await rig.mute(3)
        try:
            result = await silent.put_credentials([code("s-1", "80001"), code("s-2", "80002")])
            assert set(result.failures) == {"s-1", "s-2"}
            assert all(isinstance(e, LockTimeoutError) for e in result.failures.values())
            assert (await healthy.put_credentials([code("h-1", "90001")])).ok
            assert (1, "90001") in (await rig.slots(4)).values()
        finally:
            await rig.mute(3, on=False)
        assert (await healthy.delete_credentials(["h-1"])).ok


async def test_conformance_kit(rig: ZWaveRig) -> None:
    async with make_driver(rig, 2) as driver:
        await check_driver(driver)
    assert await rig.slots(2) == {}


async def test_drift_is_found_by_the_checksum(rig: ZWaveRig) -> None:
    # The driver's own clock, moved by the test: the check is due when verify_interval has
    # passed on it, not when enough real time happened to go by (the rig answers in well under
    # a millisecond once warm, so a tiny real interval made this test pass or fail by chance).
    clock = FakeClock()
    async with make_driver(rig, 2, now=clock.now, verify_interval=60) as driver:
        assert (await driver.put_credentials([code("d-1", "864200"), code("d-2", "975311")])).ok
        slots = await rig.slots(2)
        (slot,) = [s for s, (_, c) in slots.items() if c == "864200"]
        reads = len(await rig.set_log(2))
        # Someone changes that slot at the keypad. Within verify_interval the driver trusts its
        # slot map; once it has passed, the checksum no longer matches, the driver reads the
        # slots again, and the credential is no longer listed (the gateway puts it again
        # elsewhere); the owner's new code is left alone.
        await rig.program(2, slot, "123123")
        assert [c.credential_id for c in await driver.list_credentials()] == ["d-1", "d-2"]
        clock.advance(61)
        assert [c.credential_id for c in await driver.list_credentials()] == ["d-2"]
        assert len(await rig.set_log(2)) == reads  # reading wrote nothing
        assert (await driver.put_credentials([code("d-1", "864200")])).ok
        held = {c: s for s, (_, c) in (await rig.slots(2)).items()}
        assert held["123123"] == slot and held["864200"] != slot
        assert (await driver.delete_credentials(["d-1", "d-2"])).ok
    assert {c for _, c in (await rig.slots(2)).values()} == {"123123"}


async def test_a_lock_that_masks_codes_is_verified_by_status(rig: ZWaveRig) -> None:
    await rig.control({"op": "mask", "node": 4, "on": True})
    try:
        async with make_driver(rig, 4) as driver:
            assert (await driver.put_credentials([code("x-1", "246810")])).ok
            assert [c.credential_id for c in await driver.list_credentials()] == ["x-1"]
            held = await rig.slots(4)
            assert (1, "246810") in held.values()  # the rig's own view is not masked
            (slot,) = [s for s, (_, c) in held.items() if c == "246810"]
            assert driver.server is not None
            node = driver.server.node(4)
            assert node is not None
            reading = await UserCodes(node, timeout=WAIT, lock_id="x").read(slot)
            assert reading.masked  # what the driver saw: the slot in use, the digits hidden
            assert (await driver.delete_credentials(["x-1"])).ok
            assert "246810" not in {c for _, c in (await rig.slots(4)).values()}
    finally:
        await rig.control({"op": "mask", "node": 4, "on": False})
