"""A lock removed at runtime while a first full sync moves its snapshot in (the database's
write lock held on another connection): the removal waits in its task, the loop goes on,
and its sync state, link keys and record go together once the snapshot has committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.clock import FakeClock
from tests.core.conftest import snapshot
from tests.core.factories import grant
from tests.core.test_bulk_write import HeldMove, committed
from tests.e2e.site import running_site

KEYS = "SELECT count(*) FROM keystore WHERE name LIKE 'front/%'"


async def test_a_lock_removed_during_a_first_sync_waits_in_its_task(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        gw = site.gateway
        store = gw.store
        path = store.db.path
        assert committed(path, "SELECT count(*) FROM locks WHERE lock_id = 'front'") == [(1,)]
        store.keystore("front").put("probe", b"k")  # a key of the lock, to be forgotten
        store.db.conn.execute("PRAGMA busy_timeout=0")  # a write that waited would fail
        held = HeldMove(store.db)
        first = snapshot([grant(f"g{i}", start=clock.now()) for i in range(20)], [])
        sync = await held.running(store.cloud.apply_snapshot_sliced(first, clock.now()))
        handle = gw.locks["front"].handle
        closed = asyncio.Event()
        close = handle.close

        async def close_then_tell() -> None:
            await close()
            closed.set()

        handle.close = close_then_tell  # type: ignore[method-assign]
        removing = asyncio.create_task(gw.remove_lock("front"))
        await asyncio.wait_for(closed.wait(), 30)  # then it goes on to the store, and waits
        assert store.db.writers_waiting == 1 and not removing.done()
        assert committed(path, "SELECT count(*) FROM locks WHERE lock_id = 'front'") == [(1,)]
        held.release.set()
        async with asyncio.timeout(30):
            await sync
            await removing
        assert committed(path, "SELECT count(*) FROM locks WHERE lock_id = 'front'") == [(0,)]
        assert committed(path, KEYS) == [(0,)]
        assert "front" not in gw.locks
