"""``lockgate run`` as systemd runs it: a child process with ``$NOTIFY_SOCKET``,
``$WATCHDOG_USEC`` and ``$CREDENTIALS_DIRECTORY``, stopped with SIGTERM.

The test is the service manager: it binds the notify socket and waits for READY=1, the
watchdog pings and STOPPING=1. The cloud is either the fake cloud, served from this process, or
a port nobody listens on (with grants from an earlier sync already in the store): the gateway
must serve its lock either way. After the child exits, the store is opened cold and checked:
intact, closed cleanly, the grants there, and every credential the store calls applied really
on the (simulated) lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sqlite3
import statistics
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lockgate_sim.lock import SimLock

from fakecloud import DEMO_SEED, FakeCloudServer
from gateway.models import AccessMethod, Grant
from gateway.store.schema import MIGRATIONS
from gateway.store.sync_state import SyncStatus
from tests.deploy.conftest import NotifySocket, Site, unused_port

LOCKGATE = Path(sys.executable).with_name("lockgate")
MAIN_BUILDING = "ba6534a7-3500-46b2-a6d8-8d91511d0d0a"  # a space in fakecloud/seeds/demo.json
JANE_PIN = b"482913"  # her code there
WATCHDOG_USEC = 200_000


def applied(status: str) -> int:
    """How many credentials the STATUS line says are on the locks."""
    found = re.search(r"(\d+) credentials applied", status)
    return int(found.group(1)) if found else 0


@contextlib.asynccontextmanager
async def cloud_for(site: Site, up: bool) -> AsyncIterator[str]:
    """Secrets and config for the site; yields the word STATUS will show for the cloud."""
    if up:
        async with FakeCloudServer(seed=DEMO_SEED) as cloud:
            site.write_secrets(cloud.api_key)
            site.write_config(cloud.url, {"front-door": (MAIN_BUILDING,)})
            yield "cloud: in sync"
    else:
        site.write_secrets("seam_test_key")
        site.seed(
            [Grant("g-jane", None, None, space_ids=frozenset({MAIN_BUILDING}))],
            [AccessMethod("m-jane", "g-jane", "code", secret=JANE_PIN)],
        )
        site.write_config(f"http://127.0.0.1:{unused_port()}", {"front-door": (MAIN_BUILDING,)})
        yield "cloud: unreachable"


@pytest.mark.parametrize("cloud_up", [True, False], ids=["cloud-up", "cloud-down"])
async def test_ready_watchdog_and_clean_stop(
    site: Site, notify_socket: NotifySocket, cloud_up: bool
) -> None:
    assert LOCKGATE.exists(), f"{LOCKGATE} missing: pip install -e . in this environment"
    log_path = site.root / "lockgate.log"
    env = {k: v for k, v in os.environ.items() if k not in {"JOURNAL_STREAM", "WATCHDOG_PID"}}
    env |= site.env() | {
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
    }
    async with cloud_for(site, cloud_up) as cloud_state:
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *(str(LOCKGATE), "run", "--config", str(site.config)),
                env=env,
                cwd=site.root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        try:
            ready = await notify_socket.until(lambda m: "READY" in m, within=15)
            assert ready["READY"] == "1"
            assert ready["STATUS"].startswith("1 lock")
            assert notify_socket.seen[0][1] is ready, "something was sent before READY=1"

            # Fed at about half the interval while the gateway is healthy.
            for _ in range(3):
                await notify_socket.until(lambda m: m.get("WATCHDOG") == "1", within=2)
            ping_times = [t for t, m in notify_socket.seen if m.get("WATCHDOG") == "1"]
            gaps = [b - a for a, b in itertools.pairwise(ping_times)]
            assert min(gaps) > WATCHDOG_USEC / 1e6 / 4, gaps  # paced, not a busy loop
            assert statistics.median(gaps) < WATCHDOG_USEC / 1e6, gaps

            # The lock got its credentials (from the cloud, or from the store while the cloud
            # is away); then systemd stops the service.
            await notify_socket.status_until(
                lambda s: cloud_state in s and applied(s) > 0, within=10
            )
            proc.send_signal(signal.SIGTERM)
            stopping = await notify_socket.until(lambda m: "STOPPING" in m, within=10)
            assert stopping["STOPPING"] == "1"
            async with asyncio.timeout(10):
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    log = log_path.read_text(errors="replace")
    assert code == 0, log
    assert all("READY" not in m for m in notify_socket.queued())

    # The store, opened cold: intact, closed cleanly (WAL checkpointed away), data there.
    conn = sqlite3.connect(site.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    finally:
        conn.close()
    wal = site.db.with_name(site.db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the store was not closed"
    with site.open_store() as store:
        assert store.cloud.grants(), "the grants are not in the store"
        assert JANE_PIN in {m.secret for m in store.cloud.methods()}
        states = store.sync_states.for_lock("front-door")
    flash = SimLock(
        "front-door", now=lambda: datetime.now(UTC), state_file=site.lock_flash("front-door")
    )
    on_lock = {c.credential_id: c.tag for c in flash.list_credentials()}
    claimed = {mid: s.tag for mid, s in states.items() if s.state is SyncStatus.APPLIED}
    assert claimed, states
    assert {mid: on_lock.get(mid) for mid in claimed} == claimed, log
