"""SIGKILL in the middle of applying a 500-credential change, then a restart: every lock ends
with exactly the desired set, no credential is written twice, no access event is lost."""

from __future__ import annotations

import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockgate_sim.flash import read_image
from lockgate_sim.lock import SimLock, SimLockSpec

from fakecloud.server import FakeCloudServer
from tests.e2e.daemon_proc import DaemonProcess
from tests.e2e.site import daemon_toml

CODES = 500
PRESSES = 120  # keypad attempts logged on each lock while the gateway was away


def config(tmp: Path, cloud: FakeCloudServer, space: str) -> Path:
    locks = ""
    for lock_id in ("front", "back"):
        locks += f"""
[[locks]]
id = "{lock_id}"
space_ids = ["{space}"]
[locks.driver]
type = "sim"
state_file = "{tmp / (lock_id + ".flash.json")}"
slots = 1000
max_batch = 50
write_delay_s = 0.002
"""
    return daemon_toml(
        tmp,
        cloud.url,
        cloud.api_key,
        gateway_id="crash-test",
        poll_interval_s=1,
        head=f'control_socket = "{tmp / "control.sock"}"',
        tail=locks,
    )


def flash(tmp: Path, lock_id: str) -> dict[str, Any]:
    image = read_image(tmp / f"{lock_id}.flash.json")
    assert image is not None
    return image


async def test_sigkill_mid_batch_then_restart(tmp_path: Path) -> None:
    async with FakeCloudServer() as cloud:
        state = cloud.state
        space = state.add_space(name="Block")["space_id"]
        user = state.add_user_identity(full_name="Crash Test")["user_identity_id"]
        wanted = set()
        for i in range(CODES):
            g = state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": f"{100000 + i}"}],
            )
            wanted.update(g["access_method_ids"])
        # Each lock has audit-log entries the gateway has not collected yet.
        for lock_id in ("front", "back"):
            lock = SimLock(
                lock_id,
                SimLockSpec(slots=1000),
                now=lambda: datetime.now(UTC),
                state_file=tmp_path / f"{lock_id}.flash.json",
            )
            for _ in range(PRESSES):
                await lock.enter_code("0000")
        cfg = config(tmp_path, cloud, space)

        async with DaemonProcess(cfg) as first:
            await first.wait_for_line(r"front: put batch of 50", times=3)
            first.kill(signal.SIGKILL)
            assert await first.wait_exit() == -signal.SIGKILL
        held = {s["id"] for s in flash(tmp_path, "front")["slots"]}
        assert 0 < len(held) < CODES, "the kill must land in the middle of the change"

        async with DaemonProcess(cfg) as second:
            for lock_id in ("front", "back"):
                await second.wait_for_line(rf"{lock_id}: pass done: {CODES} applied")
                collected = rf"{lock_id}: .* up to seq {PRESSES}\b"
                if not first.count(collected):  # else the first run had collected them
                    await second.wait_for_line(collected)
            second.kill(signal.SIGTERM)
            assert await second.wait_exit() == 0

    for lock_id in ("front", "back"):
        memory = flash(tmp_path, lock_id)
        assert {s["id"] for s in memory["slots"]} == wanted
        writes = [n for _cid, _tag, n in memory["put_counts"]]
        assert len(writes) == CODES and max(writes) == 1, "a credential was written twice"
        assert memory["log"] == [] and memory["acked_seq"] == PRESSES

    db = sqlite3.connect(tmp_path / "lockgate.db")
    ids = [r[0] for r in db.execute("SELECT event_id FROM outbox ORDER BY seq")]
    expected = {
        f"{lock_id}:{seq}" for lock_id in ("front", "back") for seq in range(1, PRESSES + 1)
    }
    assert len(ids) == len(set(ids)) and set(ids) == expected
    states = dict(
        db.execute("SELECT state, COUNT(*) FROM lock_credentials GROUP BY state").fetchall()
    )
    assert states == {"applied": 2 * CODES}
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
