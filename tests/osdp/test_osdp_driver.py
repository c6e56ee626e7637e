"""The OSDP driver against libosdp's own readers on a real pty: reads become decisions, the
answer reaches the reader as strike, LED and buzzer commands; keys, health, eight readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import osdp
import pytest
from lockgate_sim.osdp_readers import OsdpBus
from lockgate_sim.serial_pty import Pty

from drivers.base import CredentialKind, EventKind
from drivers.osdp.driver import OsdpDriver
from drivers.osdp.errors import ProvisioningRefusedError
from drivers.osdp.feedback import OUTPUT_PULSE
from drivers.osdp.panel import ReaderHealth
from drivers.osdp.panels import PanelRegistry
from drivers.osdp.wiegand import C1000, H10301, H10304, H10306
from lockgate.testing import DriverConformance
from tests.osdp.conftest import Rig, site_key

ONLINE_WITHIN = 5.0


def is_output(c: dict[str, object]) -> bool:
    return bool(c["command"] == osdp.Command.Output)  # osdp is untyped: the == is Any


def is_led(colour: int) -> Callable[[dict[str, object]], bool]:
    def led(c: dict[str, object]) -> bool:
        return bool(c["command"] == osdp.Command.LED and c["on_color"] == colour)

    return led


async def online(driver: OsdpDriver, within: float = ONLINE_WITHIN) -> None:
    assert driver.panel is not None
    async with asyncio.timeout(within):
        await driver.panel.wait_health(driver.osdp_options.address, ReaderHealth.ONLINE)
    assert driver.connected


async def test_card_allowed_pulses_the_strike_for_its_time_green_and_beep(rig: Rig) -> None:
    driver = await rig.reader("front", 1, strike_output=2, strike_seconds=3.5)
    await online(driver)
    reader = rig.bus.readers[1]
    assert reader.secure  # enforced: the channel is encrypted with the reader's key
    rig.decisions.allow[b"4660"] = "method-1"

    reader.present_card(H10301, 4660, 18)
    strike = await reader.wait_command(is_output)
    assert strike.command == {
        "command": osdp.Command.Output,
        "output_no": 2,
        "control_code": OUTPUT_PULSE,
        "timer_count": 35,  # 3.5 s in 100 ms units
    }
    green = await reader.wait_command(is_led(osdp.CommandLEDColor.Green))
    assert green.command["timer_count"] == 30
    beep = await reader.wait_command(lambda c: c["command"] == osdp.Command.Buzzer)
    assert beep.command["rep_count"] == 1
    (request,) = rig.decisions.requests
    assert (request.lock_id, request.kind) == ("front", CredentialKind.CARD)
    assert request.secret == b"4660"
    assert "4660" not in repr(request)


async def test_unknown_card_is_denied_red_and_buzz_and_no_strike(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    await online(driver)
    reader = rig.bus.readers[1]
    reader.present_card(H10301, 999, 1)
    red = await reader.wait_command(is_led(osdp.CommandLEDColor.Red))
    buzz = await reader.wait_command(lambda c: c["command"] == osdp.Command.Buzzer)
    assert buzz.command["rep_count"] == 3
    assert reader.outputs() == []
    assert red.command["timer_count"] == 20
    assert len(rig.decisions.requests) == 1


@pytest.mark.parametrize(
    ("fmt", "facility", "number", "style", "expected"),
    [
        (H10301, 18, 4660, "number", b"4660"),
        (H10301, 18, 4660, "facility_number", b"1804660"),
        (H10306, 300, 51234, "number", b"51234"),
        (C1000, 1000, 987654, "number", b"987654"),
        (H10304, 4000, 400000, "facility_number", b"4000400000"),
    ],
)
async def test_wiegand_formats_reach_the_decider_as_the_configured_number(
    rig: Rig, fmt: object, facility: int, number: int, style: str, expected: bytes
) -> None:
    driver = await rig.reader("front", 1, card_number=style)
    await online(driver)
    rig.decisions.allow[expected] = "m"
    rig.bus.readers[1].present_card(fmt, number, facility)  # type: ignore[arg-type]
    await rig.bus.readers[1].wait_command(is_output)
    assert rig.decisions.requests[0].secret == expected


async def test_raw_bits_of_an_unknown_length_go_as_one_number(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    await online(driver)
    rig.bus.readers[1].present_bits("1" + "0" * 38 + "1")  # 40 bits: no known format
    await rig.bus.readers[1].wait_command(is_led(osdp.CommandLEDColor.Red))
    assert rig.decisions.requests[0].secret == str((1 << 39) | 1).encode()


async def test_a_card_with_bad_parity_is_a_misread_never_a_decision(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    await online(driver)
    bits = list(rig.bus.readers[1].present_card(H10301, 1, 1))  # well-formed once
    await rig.bus.readers[1].wait_command(is_led(osdp.CommandLEDColor.Red))
    bits[5] = "1" if bits[5] == "0" else "0"
    after = len(rig.bus.readers[1].commands)
    rig.bus.readers[1].present_bits("".join(bits))
    await rig.bus.readers[1].wait_command(is_led(osdp.CommandLEDColor.Red), after=after)
    assert driver.misreads == 1
    assert len(rig.decisions.requests) == 1  # only the first, well-formed read was decided


@pytest.mark.parametrize(
    "reports",
    [
        [b"1", b"2", b"3", b"4", b"#"],  # ASCII, one key per report
        [b"1234#"],  # the whole PIN in one report
        [bytes([1, 2, 3, 4]), bytes([0x0D])],  # raw values, '#' as 0x0D
        [b"9", b"9", b"*", b"1234#"],  # '*' mid-entry clears what came before
    ],
)
async def test_pin_entry_becomes_one_code_request(rig: Rig, reports: list[bytes]) -> None:
    driver = await rig.reader("front", 1)
    await online(driver)
    rig.decisions.allow[b"1234"] = "code-1"
    for keys in reports:
        rig.bus.readers[1].press(keys)
    await rig.bus.readers[1].wait_command(is_output)
    (request,) = rig.decisions.requests
    assert (request.kind, request.secret) == (CredentialKind.CODE, b"1234")


async def test_too_many_digits_are_refused_without_asking(rig: Rig) -> None:
    driver = await rig.reader("front", 1, keypad={"max_length": 6})
    await online(driver)
    rig.bus.readers[1].press(b"1234567#")
    await rig.bus.readers[1].wait_command(is_led(osdp.CommandLEDColor.Red))
    assert rig.decisions.requests == []
    rig.decisions.allow[b"123456"] = "code-1"
    rig.bus.readers[1].press(b"123456#")
    await rig.bus.readers[1].wait_command(is_output)
    assert [r.secret for r in rig.decisions.requests] == [b"123456"]


async def test_wrong_key_reader_never_comes_online_and_never_delivers_a_card(rig: Rig) -> None:
    good = await rig.reader("front", 1)
    bad = await rig.reader("back", 2, reader_key=site_key(99))
    await online(good)
    assert bad.panel is not None
    async with asyncio.timeout(ONLINE_WITHIN):
        await bad.panel.wait_health(2, ReaderHealth.KEY_REJECTED)
    assert not bad.connected
    rig.decisions.allow[b"4660"] = "m"
    rig.bus.readers[2].present_card(H10301, 4660, 18)
    # The good reader on the same bus still works; the bad one's card never arrives.
    rig.bus.readers[1].present_card(H10301, 4660, 18)
    await rig.bus.readers[1].wait_command(is_output)
    assert [r.lock_id for r in rig.decisions.requests] == ["front"]
    assert not rig.bus.readers[2].secure
    assert rig.bus.readers[2].commands == []
    page = await bad.fetch_events(0)
    assert EventKind.KEY_REJECTED in [e.kind for e in page.events]
    assert [a.kind for a in rig.alerts if a.lock_id == "back"] == ["key_rejected"]
    assert not [a for a in rig.alerts if a.lock_id == "front"]
    assert EventKind.ONLINE not in [e.kind for e in page.events]


async def test_unplugged_reader_is_back_online_within_10_s(rig: Rig) -> None:
    driver = await rig.reader("front", 1, revive_min=1.0, revive_max=5.0)  # the defaults
    await online(driver)
    assert driver.panel is not None
    rig.bus.unplug(1)
    async with asyncio.timeout(20):
        await driver.panel.wait_health(1, ReaderHealth.OFFLINE)
    replugged = time.monotonic()
    rig.bus.plug(1)
    await online(driver, within=10.0)
    print(f"back online {time.monotonic() - replugged:.2f} s after replug")
    kinds = [e.kind for e in (await driver.fetch_events(0)).events]
    assert kinds == [EventKind.ONLINE, EventKind.OFFLINE, EventKind.ONLINE]
    rig.decisions.allow[b"7"] = "m"
    rig.bus.readers[1].present_card(H10301, 7, 1)
    await rig.bus.readers[1].wait_command(is_output)


async def test_adapter_pulled_out_and_back_brings_the_readers_back(tmp_path: Path) -> None:
    with OsdpBus(Pty(link=tmp_path / "ttyRS485")) as bus:
        async with AsyncExitStack() as stack:
            rig = Rig(bus, PanelRegistry(), tmp_path, stack)
            front = await rig.reader("front", 1)
            back = await rig.reader("back", 2)
            await online(front)
            await online(back)
            bus.pull_adapter()
            assert front.panel is not None
            async with asyncio.timeout(20):
                await front.panel.wait_health(1, ReaderHealth.OFFLINE)
            bus.plug_adapter()
            await online(front, within=15.0)
            await online(back, within=15.0)
            rig.decisions.allow[b"77"] = "m"
            bus.readers[2].present_card(H10301, 77, 1)
            await bus.readers[2].wait_command(is_output)


async def test_eight_readers_on_one_bus_each_with_its_own_key(rig: Rig) -> None:
    drivers = [await rig.reader(f"door-{a}", a) for a in range(1, 9)]
    for d in drivers:
        await online(d, within=10.0)
    assert len({rig.bus.readers[a].key for a in range(1, 9)}) == 8
    assert rig.panels.get(rig.bus.path) is drivers[0].panel  # one control panel for the port
    for a in range(1, 9):
        rig.decisions.allow[str(1000 + a).encode()] = f"m{a}"
        rig.bus.readers[a].present_card(H10301, 1000 + a, 5)
    for a in range(1, 9):
        await rig.bus.readers[a].wait_command(is_output)
    assert sorted((r.lock_id, r.secret) for r in rig.decisions.requests) == sorted(
        (f"door-{a}", str(1000 + a).encode()) for a in range(1, 9)
    )


async def test_provisioning_from_install_mode_then_refused_once_keyed(rig: Rig) -> None:
    driver = await rig.reader("front", 1, reader_key=None)  # a new reader, install mode
    assert driver.panel is not None
    async with asyncio.timeout(ONLINE_WITHIN):
        await driver.panel.wait_health(1, ReaderHealth.KEY_REJECTED)  # on the default key
    await driver.commission("unused")
    assert driver.connected
    assert rig.bus.readers[1].key == site_key(1)
    keyset = [c for c in rig.bus.readers[1].commands if c.command["command"] == osdp.Command.Keyset]
    assert len(keyset) == 1
    with pytest.raises(ProvisioningRefusedError):
        await driver.commission("unused")
    assert driver.connected
    rig.decisions.allow[b"5"] = "m"
    rig.bus.readers[1].present_card(H10301, 5, 1)
    await rig.bus.readers[1].wait_command(is_output)


async def test_provisioning_refused_for_a_reader_with_another_key(rig: Rig) -> None:
    driver = await rig.reader("front", 1, reader_key=site_key(42))
    with pytest.raises(ProvisioningRefusedError):
        await driver.commission("unused")
    assert rig.bus.readers[1].key == site_key(42)
    assert not any(c.command["command"] == osdp.Command.Keyset for c in rig.bus.readers[1].commands)
    assert not driver.connected


async def test_tamper_and_power_reports_become_health_events(rig: Rig) -> None:
    seen = asyncio.Event()
    driver = await rig.reader("front", 1)
    driver.ctx.events_waiting = seen.set
    await online(driver)
    rig.bus.readers[1].report_local(tamper=True, power_failure=True)
    async with asyncio.timeout(5):
        while not (await driver.status()).tamper:
            seen.clear()
            await seen.wait()
    rig.bus.readers[1].report_local(tamper=False, power_failure=False)
    async with asyncio.timeout(5):
        while (await driver.status()).tamper:
            seen.clear()
            await seen.wait()
    kinds = [e.kind for e in (await driver.fetch_events(0)).events]
    assert kinds == [
        EventKind.ONLINE,
        EventKind.TAMPER,
        EventKind.POWER_FAILURE,
        EventKind.TAMPER_CLEARED,
        EventKind.POWER_RESTORED,
    ]


async def test_remote_unlock_and_lock_drive_the_strike(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    await online(driver)
    await driver.unlock(2.0)
    pulse = await rig.bus.readers[1].wait_command(is_output)
    assert pulse.command["timer_count"] == 20
    await driver.lock()
    off = await rig.bus.readers[1].wait_command(lambda c: is_output(c) and c["control_code"] == 1)
    assert off.command["output_no"] == 0


async def test_capabilities_say_a_reader_holds_nothing(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    caps = await driver.capabilities()
    assert not caps.stores_credentials and not caps.has_slots and caps.slots == 0
    assert caps.online_validation and caps.has_card_reader and caps.has_keypad
    assert await driver.list_credentials() == []


class TestConformance(DriverConformance):
    """The shipped conformance kit, on a reader that stores nothing."""

    @pytest.fixture
    async def driver(self, rig: Rig) -> OsdpDriver:
        d = await rig.reader("front", 1)
        await online(d)
        return d
