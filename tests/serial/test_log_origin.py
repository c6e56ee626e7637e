"""A lock's audit log after the lock changed under its id: the real serial driver on a real pty,
simulated lockproto locks behind it, the gateway's own collection into a real store.

Each new log (another device at the address, a full wipe) is read from its first entry, with
event ids no earlier log had; the same log (a pairing reset, a lock removed and added again)
goes on from its cursor with the ids it always had.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from lockgate_sim.lock import SimLock
from lockgate_sim.serial_bus import SerialSite
from lockgate_sim.serial_testing import MemoryKeyStore

from gateway.handle import LockHandle
from gateway.secrets import SecretRef, create_secret_file
from gateway.store.crypto import KEY_BYTES
from gateway.store.lock_logs import LogPosition
from gateway.store.schema import MIGRATIONS
from gateway.store.store import Store
from tests.audit_reads import collect
from tests.serial.conftest import FAST, MakeDriver


def happen(lock: SimLock, times: int) -> None:
    """``times`` entries in the lock's log: the bolt withdrawn and thrown in turn."""
    for i in range(times):
        if i % 2:
            lock.lock()
        else:
            lock.unlock()


async def commissioned(site: SerialSite, make_driver: MakeDriver) -> LockHandle:
    """``lock-1`` commissioned, behind a handle."""
    driver = await make_driver("lock-1")
    await driver.commission(site.pairing_secret("lock-1"))
    return LockHandle(driver)


def ids(store: Store) -> list[str]:
    return [e.event_id for e in store.outbox.entries("lock-1")]


async def test_a_new_device_under_the_same_id_has_every_entry_recorded_with_new_ids(
    site: SerialSite, make_driver: MakeDriver, store: Store, tmp_path: Path
) -> None:
    handle = await commissioned(site, make_driver)
    happen(site.locks["lock-1"], 6)
    assert await collect(handle, store) == 6
    assert ids(store) == [f"lock-1:{seq}" for seq in range(1, 7)]

    # The installer swaps the lock: another device at the address, its log counting from 1.
    engine = site.replace_lock("lock-1", state_file=tmp_path / "new-lock.json", **FAST)
    happen(site.locks["lock-1"], 2)  # below the old lock's cursor (6)
    await handle.commission(engine.pairing_secret)
    assert await collect(handle, store) == 2
    happen(site.locks["lock-1"], 5)  # past the old cursor: 3..7, 3..6 taken by the old lock
    assert await collect(handle, store) == 5

    new = [f"lock-1:1:{seq}" for seq in range(1, 8)]
    assert ids(store) == [f"lock-1:{seq}" for seq in range(1, 7)] + new
    entries = store.outbox.entries("lock-1")
    assert [(e.payload["lock_seq"], e.payload.get("lock_epoch")) for e in entries[6:]] == [
        (seq, 1) for seq in range(1, 8)
    ]
    assert "lock_epoch" not in entries[0].payload  # the first log's payloads as they were
    assert site.locks["lock-1"].log == []  # every entry acknowledged
    await handle.close()


async def test_a_full_wipe_and_commissioning_again_reads_the_new_log_from_its_start(
    site: SerialSite, make_driver: MakeDriver, store: Store
) -> None:
    handle = await commissioned(site, make_driver)
    lock = site.locks["lock-1"]
    happen(lock, 4)
    assert await collect(handle, store) == 4

    site.engines["lock-1"].factory_reset()  # flash erased: new device id and key, log from 1
    happen(lock, 3)
    await handle.commission(site.pairing_secret("lock-1"))
    assert await collect(handle, store) == 3
    assert ids(store) == [f"lock-1:{s}" for s in range(1, 5)] + [f"lock-1:1:{s}" for s in (1, 2, 3)]

    site.engines["lock-1"].factory_reset()  # and once more: a third log, a third epoch
    happen(lock, 1)
    await handle.commission(site.pairing_secret("lock-1"))
    assert await collect(handle, store) == 1
    assert ids(store)[-1] == "lock-1:2:1"
    await handle.close()


async def test_a_pairing_reset_keeps_the_log_and_its_ids(
    site: SerialSite, make_driver: MakeDriver, store: Store
) -> None:
    """The lock forgets the gateway, not its log (docs/protocol.md §5.2): commissioned again,
    it goes on from the cursor, nothing read twice."""
    handle = await commissioned(site, make_driver)
    lock = site.locks["lock-1"]
    happen(lock, 3)
    assert await collect(handle, store) == 3
    happen(lock, 1)  # 4: not read yet
    site.engines["lock-1"].reset_pairing()
    happen(lock, 1)  # 5
    await handle.commission(site.pairing_secret("lock-1"))
    assert await collect(handle, store) == 2
    assert ids(store) == [f"lock-1:{seq}" for seq in range(1, 6)]
    await handle.close()


async def test_a_removed_lock_added_again_goes_on_when_it_is_the_same_device(
    site: SerialSite, make_driver: MakeDriver, store: Store, keystore: MemoryKeyStore
) -> None:
    """Removal forgets the lock and its link keys; the same device, commissioned again,
    proves the same origin and its log goes on. Another device would start a new epoch."""
    handle = await commissioned(site, make_driver)
    lock = site.locks["lock-1"]
    happen(lock, 3)
    assert await collect(handle, store) == 3
    await handle.close()
    store.lock_map.remove("lock-1")  # what Gateway.remove_lock does, with the keys
    keystore.values.clear()
    forgotten = store.outbox.logs.position("lock-1")
    assert forgotten is not None and forgotten.forgotten

    site.engines["lock-1"].reset_pairing()  # it still holds the old gateway's key
    happen(lock, 2)
    again = LockHandle(await make_driver("lock-1", keys=keystore))
    await again.commission(site.pairing_secret("lock-1"))
    assert await collect(again, store) == 2
    assert ids(store) == [f"lock-1:{seq}" for seq in range(1, 6)]
    position = store.outbox.logs.position("lock-1")
    assert position is not None and (position.epoch, position.forgotten) == (0, False)
    await again.close()


async def test_an_upgraded_store_keeps_the_cursor_and_the_ids(
    site: SerialSite, make_driver: MakeDriver, tmp_path: Path
) -> None:
    """A store of schema 5 (cursors without origins): the lock's log goes on from its cursor,
    with ``<lock>:<seq>`` ids, and its origin is kept from the first read. A cursor of a lock
    no longer in the lock map (removed before the upgrade) is taken for forgotten."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        conn.executescript(script)
    conn.execute("INSERT INTO lock_cursors VALUES ('lock-1', 3), ('gone', 9)")
    conn.execute(
        "INSERT INTO locks VALUES ('lock-1', 'serial', '[\"s\"]', '[]', '[]',"
        " '2026-01-01T00:00:00+00:00')"
    )
    conn.execute("PRAGMA user_version=5")
    conn.commit()
    conn.close()
    create_secret_file(tmp_path / "old.key", os.urandom(KEY_BYTES))

    driver = await make_driver("lock-1")
    await driver.commission(site.pairing_secret("lock-1"))
    handle = LockHandle(driver)
    happen(site.locks["lock-1"], 5)  # 1..3 recorded before the upgrade, 4 and 5 not
    with Store.open(path, SecretRef(file=tmp_path / "old.key")) as store:
        assert store.outbox.cursor("lock-1") == 3
        assert store.outbox.logs.position("gone") == LogPosition(None, 0, 9, forgotten=True)
        assert await collect(handle, store) == 2
        assert ids(store) == ["lock-1:4", "lock-1:5"]
        position = store.outbox.logs.position("lock-1")
        assert position is not None
        assert (position.epoch, position.seq) == (0, 5)
        assert driver.session is not None
        assert position.origin == driver.session.keys.log_origin
    await handle.close()


async def test_a_lock_that_lost_its_log_is_read_again_from_the_start(
    site: SerialSite, make_driver: MakeDriver, store: Store
) -> None:
    """The same device and keys, its log counting from 1 again: the POLL replies' ``last_seq``
    (asked after the gateway's last read) is below the cursor, so the log is a new one at
    once; while the log is whole, the same replies change nothing."""
    driver = await make_driver(
        "lock-1", start=True, poll_interval=0.01, idle_poll_interval=0.02,
        rest_poll_interval=0.05, rest_after=0.2,
    )
    await driver.commission(site.pairing_secret("lock-1"))
    handle = LockHandle(driver)
    lock = site.locks["lock-1"]
    happen(lock, 4)
    assert await collect(handle, store) == 4

    async def polled_since() -> None:
        driver.poller.activity()  # full rate; resting again only after polls from now on
        await asyncio.wait_for(driver.poller.resting.wait(), 5)

    await polled_since()
    assert await collect(handle, store) == 0  # the head (4) is the cursor: the same log
    lock.lose_log()
    happen(lock, 2)
    await polled_since()
    assert await collect(handle, store) == 2
    assert await collect(handle, store) == 0
    assert ids(store) == [f"lock-1:{s}" for s in range(1, 5)] + ["lock-1:1:1", "lock-1:1:2"]
    await handle.close()
