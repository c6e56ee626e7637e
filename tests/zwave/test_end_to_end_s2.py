"""The core flow through the gateway to two Z-Wave locks included with S2 Access Control."""

from __future__ import annotations

from pathlib import Path

import pytest
from lockgate_sim.zwave_rig import ZWaveRig

from gateway.clock import FakeClock
from tests.zwave.flows import core_flow

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
RIG_LOCKS = 2
RIG_S2 = True


async def test_grant_to_two_locks_keypad_event_and_removal(
    rig: ZWaveRig, tmp_path: Path, clock: FakeClock
) -> None:
    await core_flow(tmp_path, clock, rig)
