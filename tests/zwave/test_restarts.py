"""Restarts in the middle of a batch: the daemon killed (SIGKILL), the Z-Wave JS server
restarted. Afterwards each lock holds exactly the desired codes, no code was written twice, and
the gap in the locks' events is on record."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from lockgate_sim.zwave_rig import ZWaveRig

from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from tests.e2e.daemon_proc import DaemonProcess
from tests.e2e.site import daemon_toml
from tests.zwave.site import zwave_site

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
RIG_LOCKS = 4
CODES = 20


def config(tmp: Path, cloud: FakeCloudServer, space: str, rig: ZWaveRig) -> Path:
    locks = ""
    for lock_id, node in (("front", 2), ("back", 3)):
        locks += f"""
[[locks]]
id = "{lock_id}"
space_ids = ["{space}"]
[locks.driver]
type = "zwave"
server = "{rig.url}"
node_id = {node}
"""
    return daemon_toml(
        tmp, cloud.url, cloud.api_key, gateway_id="zwave-crash-test", poll_interval_s=1, tail=locks
    )


async def exactly_once(rig: ZWaveRig, node: int, codes: set[str]) -> None:
    held = await rig.slots(node)
    assert sorted(c for _, c in held.values()) == sorted(codes)
    writes = Counter(code for slot, status, code in await rig.set_log(node) if status == 1)
    assert set(writes) == codes
    assert max(writes.values()) == 1, "a code was written twice"


async def test_daemon_killed_mid_batch(rig: ZWaveRig, tmp_path: Path) -> None:
    async with FakeCloudServer() as cloud:
        state = cloud.state
        space = state.add_space(name="Block")["space_id"]
        user = state.add_user_identity(full_name="Crash Test")["user_identity_id"]
        codes = {f"{510000 + i}" for i in range(CODES)}
        for code in sorted(codes):
            state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": code}],
            )
        cfg = config(tmp_path, cloud, space, rig)

        async with DaemonProcess(cfg) as first:
            async with asyncio.timeout(60):
                await rig.wait_sets(2, 4)
            first.kill(signal.SIGKILL)
            assert await first.wait_exit() == -signal.SIGKILL
        assert 0 < len(await rig.slots(2)) < CODES, "the kill must land in the middle"

        async with DaemonProcess(cfg) as second:
            for lock_id in ("front", "back"):
                await second.wait_for_line(rf"{lock_id}: pass done: {CODES} applied", within=60)
                await second.wait_for_line(rf"{lock_id}: \d+ audit-log entries recorded")
            second.kill(signal.SIGTERM)
            assert await second.wait_exit() == 0

    for node in (2, 3):
        await exactly_once(rig, node, codes)
    db = sqlite3.connect(tmp_path / "lockgate.db")
    payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox")]
    gaps = {p["lock_id"] for p in payloads if p["kind"] == "events_lost"}
    assert gaps == {"front", "back"}
    text = repr(payloads)
    assert not any(code in text for code in codes)


async def test_zwave_js_server_restarted_mid_batch(
    rig: ZWaveRig, tmp_path: Path, clock: FakeClock
) -> None:
    nodes = {"front": 4, "back": 5}
    async with zwave_site(tmp_path, clock, rig, nodes=nodes) as site:
        codes = {f"{620000 + i}" for i in range(CODES)}
        ids = {site.grant(space=site.space_a, code=code)[1] for code in sorted(codes)}
        await site.sync()
        async with asyncio.timeout(60):
            await rig.wait_sets(4, 4)
        await rig.restart_server()
        for lock_id in nodes:

            def all_applied(lid: str = lock_id) -> bool:
                return site.applied(lid) == ids

            await site.until(lock_id, all_applied, 60)

            def gap_recorded(lid: str = lock_id) -> bool:
                return any(
                    e["kind"] == "events_lost" and e["lock_id"] == lid for e in site.outbox()
                )

            await site.until(lock_id, gap_recorded, 30)
    for node in nodes.values():
        await exactly_once(rig, node, codes)
