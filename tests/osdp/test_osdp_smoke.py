from __future__ import annotations

import asyncio

import osdp

from drivers.osdp.panel import ReaderHealth
from drivers.osdp.wiegand import H10301
from tests.osdp.conftest import Rig


async def test_card_allowed_pulses_strike(rig: Rig) -> None:
    driver = await rig.reader("front", 1)
    async with asyncio.timeout(5):
        await driver.panel.wait_health(1, ReaderHealth.ONLINE)
    rig.decisions.allow[b"4660"] = "m1"
    reader = rig.bus.readers[1]
    reader.present_card(H10301, 4660, 18)
    cmd = await reader.wait_command(lambda c: c["command"] == osdp.Command.Output)
    assert cmd.command["timer_count"] == 50
    assert rig.decisions.requests[0].secret == b"4660"
