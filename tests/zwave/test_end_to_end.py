"""The core flow through the gateway to two Z-Wave locks, included without S2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lockgate_sim.zwave_rig import ZWaveRig

from gateway.clock import FakeClock
from gateway.store.sync_state import SyncStatus
from tests.zwave.flows import WAIT, core_flow
from tests.zwave.site import NODES, zwave_site

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
RIG_LOCKS = 3


async def test_grant_to_two_locks_keypad_event_and_removal(
    rig: ZWaveRig, tmp_path: Path, clock: FakeClock
) -> None:
    await core_flow(tmp_path, clock, rig)


async def test_full_refused_and_silent_locks_fail_per_credential(
    rig: ZWaveRig, tmp_path: Path, clock: FakeClock
) -> None:
    await rig.program(NODES["back"], 30, "424242")  # the owner's code, typed in at the keypad
    per_lock: dict[str, dict[str, Any]] = {
        "front": {"slot_count": 2},
        "office": {"command_timeout": 3.0},
    }
    async with zwave_site(tmp_path, clock, rig, per_lock=per_lock) as site:
        await rig.mute(NODES["office"])  # out of range from here on
        try:
            owners, *others = [
                site.grant(space=site.space_a, code=c)[1] for c in ("424242", "515151", "626262")
            ]
            _, office = site.grant(space=site.space_b, code="737373")
            await site.sync()

            def errors(lock_id: str) -> dict[str, str | None]:
                rows = site.gateway.store.sync_states.for_lock(lock_id).values()
                return {r.method_id: r.error_code for r in rows if r.state is SyncStatus.FAILED}

            # front has two slots for three codes: one fails for capacity, two are on it.
            await site.until("front", lambda: len(site.applied("front")) == 2, WAIT)
            await site.until("front", lambda: len(errors("front")) == 1, WAIT)
            assert list(errors("front").values()) == ["capacity"]
            # back refuses the owner's code as a duplicate; the others are on it.
            await site.until("back", lambda: site.applied("back") == set(others), WAIT)
            await site.until("back", lambda: errors("back") == {owners: "duplicate"}, WAIT)
            # office does not answer: its credential fails, the other locks went on meanwhile.
            await site.until("office", lambda: errors("office") == {office: "timeout"}, WAIT)
            assert await site.codes("back") == {"424242", "515151", "626262"}
            assert (await rig.slots(NODES["back"]))[30] == (1, "424242")
            assert len(await site.codes("front")) == 2
        finally:
            await rig.mute(NODES["office"], on=False)
