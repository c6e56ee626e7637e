"""``lockgate run`` (a real process) whose state directory is on a tmpfs that fills up: a cloud
change of 300 codes cannot be stored, the daemon says ``store_full`` and lives on; once space
returns it stores the change, puts the codes on the lock and stops cleanly; the database is
intact. (The in-process test beside it, test_disk_full.py, checks decisions, lockouts and
expiry during the full period.)"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from lockgate_sim.flash import read_image

from fakecloud.server import FakeCloudServer
from tests.e2e.daemon_proc import DaemonProcess
from tests.e2e.site import daemon_toml
from tests.fullfs import fill, integrity, small_tmpfs

CODES = 300


def config(tmp: Path, state: Path, cloud: FakeCloudServer, space: str) -> Path:
    return daemon_toml(
        tmp,
        cloud.url,
        cloud.api_key,
        gateway_id="full-disk",
        poll_interval_s=0.5,
        db=state / "lockgate.db",
        tail=f"""[reconcile]
retry_max_s = 2
[[locks]]
id = "front"
space_ids = ["{space}"]
[locks.driver]
type = "sim"
state_file = "{tmp / "front.flash.json"}"
slots = 1000
max_batch = 100
""",
    )


async def test_the_daemon_rides_out_a_full_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "state", "3m") as state:
        async with FakeCloudServer() as cloud:
            space = cloud.state.add_space(name="Block")["space_id"]
            user = cloud.state.add_user_identity(full_name="Disk Full")["user_identity_id"]
            async with DaemonProcess(config(tmp_path, state, cloud, space)) as daemon:
                await daemon.wait_for_line(r"serving 1 locks")
                filler = fill(state)
                wanted: set[str] = set()
                for i in range(CODES):
                    g = cloud.state.grants.create(
                        user_identity_id=user,
                        space_ids=[space],
                        requested_access_methods=[{"mode": "code", "code": f"{200000 + i}"}],
                    )
                    wanted.update(g["access_method_ids"])
                await daemon.wait_for_line(r"store_full: ")
                await daemon.wait_for_line(r"not stored, the disk is full")
                assert daemon.proc is not None and daemon.proc.returncode is None

                filler.unlink()
                await daemon.wait_for_line(r"the store takes writes again", within=60)
                await daemon.wait_for_line(rf"front: pass done: {CODES} applied", within=60)
                daemon.kill(signal.SIGTERM)
                assert await daemon.wait_exit() == 0
                assert not daemon.count(r"Traceback")

            db = state / "lockgate.db"
            assert integrity(db) == "ok"
            conn = sqlite3.connect(db)
            try:
                stored = {r[0] for r in conn.execute("SELECT method_id FROM methods")}
            finally:
                conn.close()
            assert wanted <= stored
            flash = read_image(tmp_path / "front.flash.json")
            assert flash is not None
            assert {s["id"] for s in flash["slots"]} == wanted
