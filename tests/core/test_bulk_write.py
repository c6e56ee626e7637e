"""A bulk write (a full snapshot, a lock's thousands of sync states) does not hold the
database's write lock while it compares, seals and builds rows: the event loop's own writes
(access events, replay records) commit meanwhile without waiting, and readers still see the
previous snapshot whole until the new one is moved in."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.events import AccessEvent
from gateway.models import AccessMethod, CloudChanges
from gateway.secrets import SecretRef
from gateway.store.cloud_data import CloudData
from gateway.store.db import Database
from gateway.store.store import Store
from gateway.store.sync_state import CredentialSyncState, SyncStatus
from tests.core.conftest import snapshot
from tests.core.factories import code, grant
from tests.loop_ticks import LoopTicks

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Held:
    """Holds a bulk write's ``prepare`` (in its worker thread) until released."""

    def __init__(self, db: Database) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.db = db
        self._bulk_write = db.bulk_write
        db.bulk_write = self._held  # type: ignore[method-assign]

    async def _held(
        self,
        write: Callable[[sqlite3.Connection], Any],
        *,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Any:
        assert prepare is not None, "this bulk write stages nothing off the write lock"

        def held(conn: sqlite3.Connection) -> None:
            prepare(conn)
            self.entered.set()
            assert self.release.wait(30)

        return await self._bulk_write(write, prepare=held)

    async def running(self, task: Awaitable[Any]) -> asyncio.Task[Any]:
        started = asyncio.ensure_future(task)
        assert await asyncio.to_thread(self.entered.wait, 30)
        return started


def committed(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """What another connection (another process) reads: committed rows only."""
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def _event(i: int) -> AccessEvent:
    return AccessEvent(f"event-{i}", T0, "access_allowed", lock_id="lock-a")


def assert_same_cloud(store: Store, ref: Store) -> None:
    """``store`` holds the same grants, methods (revoked too) and data version as ``ref``."""
    assert store.cloud.grants(include_revoked=True) == ref.cloud.grants(include_revoked=True)
    assert store.cloud.methods(include_revoked=True) == ref.cloud.methods(include_revoked=True)
    assert store.cloud.version == ref.cloud.version


async def test_loop_writes_commit_while_a_snapshot_is_staged(store: Store) -> None:
    store.cloud.apply_snapshot(snapshot([grant("g1", start=T0)], [code("m1", "g1", "1111")]), T0)
    before = store.cloud.version
    # A write that waited for the database would wait busy_timeout and then fail: fail fast.
    store.db.conn.execute("PRAGMA busy_timeout=0")
    held = Held(store.db)
    new = snapshot(
        [grant("g2", start=T0), grant("g3", start=T0)],
        [code("m2", "g2", "2222"), code("m3", "g3", "3333")],
    )
    sync = await held.running(store.cloud.apply_snapshot_sliced(new, T0))
    ticks = LoopTicks.start()
    # The loop's writes: an access event into the outbox, a replay record, a sync state.
    assert store.outbox.add([_event(1)]) == 1
    assert store.mobile_key_challenges.first_use("m1", b"challenge-1")
    assert not store.mobile_key_challenges.first_use("m1", b"challenge-1")
    await store.mobile_key_challenges.settle()  # written in its turn: nothing holds the gate
    store.sync_states.write([CredentialSyncState("lock-a", "m1", SyncStatus.APPLIED)], T0)
    await asyncio.sleep(0)
    assert ticks.count > 0  # the loop went on
    # Durable before the snapshot is: another connection reads them now.
    path = store.db.path
    assert len(committed(path, "SELECT event_id FROM outbox")) == 1
    assert committed(path, "SELECT method_id FROM mobile_key_challenges") == [("m1",)]
    # The snapshot is not half there for readers meanwhile.
    assert set(store.cloud.grants()) == {"g1"}
    assert store.cloud.version == before
    assert not sync.done()
    held.release.set()
    version = await asyncio.wait_for(sync, 30)
    await ticks.stop()
    assert version == store.cloud.version > before
    assert set(store.cloud.grants()) == {"g2", "g3"}
    assert store.cloud.find_by_secret("code", b"3333")[0].method_id == "m3"
    gone = store.cloud.grant("g1")
    assert gone is not None and gone.revoked_at == T0
    assert len(store.outbox.entries()) == 1


async def test_a_change_committed_while_staging_is_not_overwritten_by_stale_rows(
    store: Store, tmp_path: Path
) -> None:
    """An incremental sync that commits between staging and moving in: the snapshot is then
    written the whole way, and ends exactly as the same steps one after another would."""
    first = snapshot(
        [grant("g1", start=T0), grant("g2", start=T0)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )
    second = snapshot(
        [grant("g1", start=T0, hours=5), grant("g3", start=T0)],
        [code("m1", "g1", "1111"), code("m3", "g3", "3333")],
    )
    meanwhile = CloudChanges(
        [grant("g4", start=T0)], [code("m4", "g4", "4444")], {}, {"m1": "deleted"}, {}, [], [],
        None,
    )
    store.cloud.apply_snapshot(first, T0)
    held = Held(store.db)
    sync = await held.running(store.cloud.apply_snapshot_sliced(second, T0))
    store.cloud.apply_changes(meanwhile, T0)
    held.release.set()
    await asyncio.wait_for(sync, 30)

    with Store.open(tmp_path / "ref.db", store_key(tmp_path)) as ref:
        ref.cloud.apply_snapshot(first, T0)
        ref.cloud.apply_changes(meanwhile, T0)
        ref.cloud.apply_snapshot(second, T0)
        assert_same_cloud(store, ref)


async def test_staged_and_direct_snapshots_write_the_same_rows(
    store: Store, tmp_path: Path
) -> None:
    """The staged way (changed rows only, tombstones, raw objects) against the direct one."""
    steps = [
        snapshot(
            [grant("g1", start=T0), grant("g2", start=T0)],
            [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
        ),
        snapshot(
            [grant("g1", start=T0, hours=3), grant("g3", start=T0)],
            [code("m1", "g1", "1112"), code("m3", "g3", "3333")],
        ),
        snapshot([grant("g3", start=T0)], [code("m3", "g3", "3333")]),
    ]
    steps[1].raw["space"] = [("space-a", '{"space_id": "space-a"}')]
    with Store.open(tmp_path / "ref.db", store_key(tmp_path)) as ref:
        for snap in steps:
            await store.cloud.apply_snapshot_sliced(snap, T0)
            ref.cloud.apply_snapshot(snap, T0)
            assert store.cloud.grants(include_revoked=True) == ref.cloud.grants(
                include_revoked=True
            )
            assert store.cloud.methods(include_revoked=True) == ref.cloud.methods(
                include_revoked=True
            )
        assert store.cloud.raw("space", "space-a") == {"space_id": "space-a"}
    # Nothing staged is left behind on the bulk connection.
    assert store.db.conn.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0


async def test_sync_states_staged_in_bulk_commit_whole(store: Store) -> None:
    store.db.conn.execute("PRAGMA busy_timeout=0")
    held = Held(store.db)
    rows = [CredentialSyncState("lock-a", f"m{i}", SyncStatus.PENDING) for i in range(500)]
    writing = await held.running(store.sync_states.write_many(rows, T0))
    assert store.outbox.add([_event(2)]) == 1  # not waiting for the bulk write
    assert store.sync_states.for_lock("lock-a") == {}
    held.release.set()
    await asyncio.wait_for(writing, 30)
    assert len(store.sync_states.for_lock("lock-a")) == 500
    held = Held(store.db)
    removing = await held.running(
        store.sync_states.remove_many("lock-a", [f"m{i}" for i in range(250)])
    )
    assert len(store.sync_states.for_lock("lock-a")) == 500
    held.release.set()
    await asyncio.wait_for(removing, 30)
    assert sorted(store.sync_states.for_lock("lock-a")) == sorted(f"m{i}" for i in range(250, 500))


class HeldMove:
    """Holds a bulk write in its write transaction (rows moved in, not committed: the
    database's write lock held) until released."""

    def __init__(self, db: Database) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._bulk_write = db.bulk_write
        db.bulk_write = self._held  # type: ignore[method-assign]

    async def _held(
        self,
        write: Callable[[sqlite3.Connection], Any],
        *,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Any:
        def held(conn: sqlite3.Connection) -> Any:
            result = write(conn)
            self.entered.set()
            assert self.release.wait(30)
            return result

        return await self._bulk_write(held, prepare=prepare)

    async def running(self, task: Awaitable[Any]) -> asyncio.Task[Any]:
        started = asyncio.ensure_future(task)
        assert await asyncio.to_thread(self.entered.wait, 30)
        return started


async def test_loop_writes_wait_off_the_loop_while_a_first_sync_moves_its_rows_in(
    store: Store,
) -> None:
    """A first full sync moves every row in under the write lock (200,000 rows: about half a
    second). The loop's writers (a lock's audit-log page into the outbox, delivery marks,
    named values) wait for it in their own tasks: the loop goes on, none of them fails with
    busy_timeout=0, each commits once the snapshot has, and the snapshot appears whole."""
    store.outbox.add([_event(1)])
    [pending] = store.outbox.pending()
    store.db.conn.execute("PRAGMA busy_timeout=0")
    held = HeldMove(store.db)
    first = snapshot(
        [grant(f"g{i}", start=T0) for i in range(50)],
        [code(f"m{i}", f"g{i}", f"{1000 + i}") for i in range(50)],
    )
    sync = await held.running(store.cloud.apply_snapshot_sliced(first, T0))
    # A write on the loop's connection now would wait there, holding the loop: with
    # busy_timeout=0 it fails at once instead.
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.meta.set("probe", "1")
    ticks = LoopTicks.start()

    async def in_turn() -> None:  # a synchronous writer called by a task in its turn
        async with store.db.turn():
            store.meta.set("floor", "3")

    writers = [
        asyncio.create_task(
            store.outbox.ingest_lock_events("lock-a", [_event(2), _event(3)], 7)
        ),
        asyncio.create_task(store.outbox.mark_delivered([pending.seq], T0)),
        asyncio.create_task(store.meta.save("probe", "2")),
        asyncio.create_task(in_turn()),
    ]
    await asyncio.sleep(0)  # each writer's first step: it finds the database held and waits
    assert store.db.writers_waiting == len(writers)
    seen = ticks.count
    await asyncio.sleep(0)
    assert ticks.count > seen  # the loop goes on
    assert not any(w.done() for w in writers)
    assert set(store.cloud.grants()) == set()  # nothing of the snapshot before it commits
    assert store.meta.get("probe") is None
    held.release.set()
    async with asyncio.timeout(30):
        version = await sync
        added, _, _, _ = await asyncio.gather(*writers)
    await ticks.stop()
    assert added == 2
    assert version == store.cloud.version
    assert len(store.cloud.grants()) == 50
    # Committed, as another connection (a restart) reads them.
    path = store.db.path
    assert committed(path, "SELECT value FROM meta WHERE key = 'probe'") == [("2",)]
    assert committed(path, "SELECT value FROM meta WHERE key = 'floor'") == [("3",)]
    assert committed(path, "SELECT event_seq FROM lock_cursors WHERE lock_id = 'lock-a'") == [
        (7,)
    ]
    assert committed(path, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == [(2,)]
    assert store.db.writers_waiting == 0


async def test_a_loop_writer_cancelled_while_waiting_writes_nothing(store: Store) -> None:
    store.db.conn.execute("PRAGMA busy_timeout=0")
    held = HeldMove(store.db)
    sync = await held.running(
        store.cloud.apply_snapshot_sliced(snapshot([grant("g1", start=T0)], []), T0)
    )
    waiting = asyncio.create_task(store.meta.save("probe", "1"))
    await asyncio.sleep(0)
    assert store.db.writers_waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert store.db.writers_waiting == 0
    held.release.set()
    await asyncio.wait_for(sync, 30)
    assert store.meta.get("probe") is None
    await store.meta.save("probe", "2")  # with nothing holding the database: at once
    assert store.meta.get("probe") == "2"


def store_key(tmp_path: Path) -> SecretRef:
    return SecretRef(file=tmp_path / "store.key")


def _indexes(path: Path) -> list[tuple[Any, ...]]:
    return sorted(
        committed(path, "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'")
    )


async def test_a_first_sync_writes_its_rows_straight_in_with_the_indexes_made_again(
    store: Store, tmp_path: Path
) -> None:
    """Into an empty store nothing is staged: the rows go in under the write lock, the
    tables' indexes dropped and made again after them, and the store ends as the direct
    way leaves it (the same rows, the same indexes, which answer lookups)."""
    indexes = _indexes(store.db.path)
    assert any(name == "methods_by_secret" for name, _, _ in indexes)
    first = snapshot(
        [grant("g1", start=T0), grant("g2", start=T0)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )
    first.raw["access_grant"] = [("g1", '{"access_grant_id": "g1"}')]
    staged: list[int] = []
    held = Held(store.db)
    sync = await held.running(store.cloud.apply_snapshot_sliced(first, T0))
    staged.append(len(committed(store.db.path, "SELECT * FROM grants")))
    held.release.set()
    version = await asyncio.wait_for(sync, 30)
    assert staged == [0]
    assert version == store.cloud.version > 0
    assert _indexes(store.db.path) == indexes
    assert [m.method_id for m in store.cloud.find_by_secret("code", b"2222")] == ["m2"]
    assert [m.method_id for m in store.cloud.methods_of_grant("g1")] == ["m1"]
    assert store.cloud.raw("access_grant", "g1") == {"access_grant_id": "g1"}
    with Store.open(tmp_path / "ref.db", store_key(tmp_path)) as ref:
        ref.cloud.apply_snapshot(first, T0)
        assert_same_cloud(store, ref)
    # The next snapshot finds rows: it is staged and compared again (only g2 changes).
    second = snapshot(
        [grant("g1", start=T0), grant("g2", start=T0, hours=4)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )
    sealed = committed(store.db.path, "SELECT secret_ct FROM methods WHERE method_id = 'm1'")
    await store.cloud.apply_snapshot_sliced(second, T0)
    assert committed(store.db.path, "SELECT secret_ct FROM methods WHERE method_id = 'm1'") == (
        sealed
    )
    assert store.cloud.grants()["g2"] == grant("g2", start=T0, hours=4)


async def test_a_first_sync_writes_rows_with_and_without_nulls_as_the_direct_way(
    store: Store, tmp_path: Path
) -> None:
    """A first sync writes the runs of rows with no problem and not revoked without their
    NULL columns, the others whole: every column of every row, and the rows' order, are
    those the direct way writes."""
    t1 = T0.replace(hour=13)
    grants = [
        grant("g1", start=T0),
        grant("g2", start=T0, problem="ends_at is not after starts_at"),
        grant("g3", start=T0),
        replace(grant("g4", start=T0), revoked_at=t1, revoked_reason="user identity deleted"),
        replace(grant("g5", start=T0), revoked_reason="a reason alone"),
        grant("g6", start=None, hours=None),
    ]
    methods = [
        code("m1", "g1", "1111"),
        replace(code("m2", "g2", "2222"), problem="code access method has no code"),
        replace(code("m3", "g3", "3333"), revoked_at=t1, revoked_reason="being deleted"),
        AccessMethod("m4", "g3", "card", secret=None, problem="extension field missing"),
        AccessMethod("m5", "g3", "card", secret=None),
        code("m6", "g6", "6666"),
        code("m7", "g6", "7777"),
    ]
    first = snapshot(grants, methods)
    await store.cloud.apply_snapshot_sliced(first, T0)
    with Store.open(tmp_path / "ref.db", store_key(tmp_path)) as ref:
        ref.cloud.apply_snapshot(first, T0)
        assert_same_cloud(store, ref)
        for sql in (
            "SELECT rowid, * FROM grants ORDER BY rowid",
            "SELECT rowid, method_id, grant_id, mode, display_name, secret_index, problem,"
            " revoked_at, revoked_reason, issued, seam_notes FROM methods ORDER BY rowid",
        ):
            assert committed(store.db.path, sql) == committed(ref.db.path, sql)
    assert [g.grant_id for g in store.cloud.grants(include_revoked=True).values()] == [
        "g1", "g2", "g3", "g4", "g5", "g6"
    ]


async def test_a_first_sync_that_finds_rows_at_its_write_compares_them(
    store: Store, tmp_path: Path
) -> None:
    """An incremental sync commits between a first sync's look at the empty store and its
    write: the snapshot is then written the whole way, comparing with what is there, and
    ends as the same steps one after another would."""
    first = snapshot(
        [grant("g1", start=T0), grant("g2", start=T0)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )
    meanwhile = CloudChanges(
        [grant("g4", start=T0)], [code("m4", "g4", "4444")], {}, {}, {}, [], [], None
    )
    held = Held(store.db)
    sync = await held.running(store.cloud.apply_snapshot_sliced(first, T0))
    store.cloud.apply_changes(meanwhile, T0)
    held.release.set()
    await asyncio.wait_for(sync, 30)
    with Store.open(tmp_path / "ref.db", store_key(tmp_path)) as ref:
        ref.cloud.apply_changes(meanwhile, T0)
        ref.cloud.apply_snapshot(first, T0)
        assert_same_cloud(store, ref)
    gone = store.cloud.grant("g4")
    assert gone is not None and gone.revoked_at == T0


async def test_a_first_sync_that_fails_in_its_write_leaves_the_store_as_it_was(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexes are dropped inside the first sync's transaction: a failure after the rows
    went in (a full disk at the last statement, a crash) rolls the drop back with the rows,
    and the next sync writes the snapshot whole."""
    indexes = _indexes(store.db.path)
    first = snapshot(
        [grant("g1", start=T0), grant("g2", start=T0)],
        [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
    )

    def broken(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as m:
        m.setattr(CloudData, "_snapshot_rest", broken)
        with pytest.raises(sqlite3.OperationalError):
            await store.cloud.apply_snapshot_sliced(first, T0)
    assert committed(store.db.path, "SELECT count(*) FROM grants") == [(0,)]
    assert committed(store.db.path, "SELECT count(*) FROM methods") == [(0,)]
    assert _indexes(store.db.path) == indexes
    assert store.cloud.version == 0
    version = await store.cloud.apply_snapshot_sliced(first, T0)
    assert version == store.cloud.version > 0
    assert sorted(store.cloud.grants()) == ["g1", "g2"]
    assert [m.method_id for m in store.cloud.find_by_secret("code", b"1111")] == ["m1"]
