"""The durable store: migrations, encryption at rest, atomic snapshots, tombstones."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cooperative import Slicer
from gateway.events import AccessEvent
from gateway.models import CloudChanges
from gateway.secrets import SecretError, SecretRef
from gateway.store import cloud_data
from gateway.store.cloud_data import SEEN_CHUNK
from gateway.store.crypto import StoreKeyError
from gateway.store.schema import MIGRATIONS
from gateway.store.store import Store
from tests.core.conftest import snapshot
from tests.core.factories import code, grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_first_start_creates_a_private_key_and_migrates(tmp_path: Path) -> None:
    key = tmp_path / "k" / "store.key"
    with Store.open(tmp_path / "db.sqlite", SecretRef(file=key)) as s:
        assert s.db.schema_version == len(MIGRATIONS)
        assert s.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == 32


def test_pins_are_not_in_the_database_file_in_clear(store: Store, tmp_path: Path) -> None:
    pin = "73914682"
    store.cloud.apply_snapshot(snapshot([grant("g1", start=T0)], [code("m1", "g1", pin)]), T0)
    store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("lockgate.db"))
    assert pin.encode() not in blob
    assert store.cloud.methods()[0].secret == pin.encode()
    assert [m.method_id for m in store.cloud.find_by_secret("code", pin.encode())] == ["m1"]


def test_a_wrong_key_is_refused_not_silently_used(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with Store.open(db, SecretRef(file=tmp_path / "a.key")):
        pass
    other = tmp_path / "b.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    with pytest.raises(StoreKeyError, match="not the one"):
        Store.open(db, SecretRef(file=other))
    # And a missing key for an existing database is an error, never a fresh key.
    with pytest.raises(SecretError):
        Store.open(db, SecretRef(file=tmp_path / "missing.key"))


def test_key_files_readable_by_others_are_refused(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        Store.open(tmp_path / "db", SecretRef(file=key))


def test_a_failed_snapshot_leaves_the_previous_one_whole(store: Store) -> None:
    store.cloud.apply_snapshot(snapshot([grant("g1", start=T0)], [code("m1", "g1", "1111")]), T0)
    version = store.cloud.version
    broken = snapshot([grant("g2", start=T0)], [code("m2", "g2", "2222"), code("m2", "g2", "x")])
    # A duplicate primary key is fine for INSERT OR REPLACE; force a failure mid-write instead.
    broken.methods.append(object())  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.cloud.apply_snapshot(broken, T0)
    assert set(store.cloud.grants()) == {"g1"}
    assert [m.method_id for m in store.cloud.methods()] == ["m1"]
    assert store.cloud.version == version


def test_what_a_snapshot_no_longer_holds_is_tombstoned(store: Store) -> None:
    store.cloud.apply_snapshot(
        snapshot(
            [grant("g1", start=T0), grant("g2", start=T0)],
            [code("m1", "g1", "1111"), code("m2", "g2", "2222")],
        ),
        T0,
    )
    store.cloud.apply_snapshot(snapshot([grant("g1", start=T0)], [code("m1", "g1", "1111")]), T0)
    assert set(store.cloud.grants()) == {"g1"}
    gone = store.cloud.grant("g2")
    assert gone is not None and gone.revoked_at == T0
    revoked = store.cloud.find_by_secret("code", b"2222")
    assert revoked and revoked[0].revoked_at == T0


def test_newer_schema_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Store.open(path, SecretRef(file=tmp_path / "k")):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    from gateway.store.db import StoreError

    with pytest.raises(StoreError, match="newer than this Lockgate"):
        Store.open(path, SecretRef(file=tmp_path / "k"))


def test_the_lock_map_clears_state_of_locks_no_longer_configured(store: Store) -> None:
    from gateway.store.lock_map import LockRecord
    from gateway.store.sync_state import CredentialSyncState, SyncStatus

    def rec(lock_id: str) -> LockRecord:
        return LockRecord(lock_id, "sim", frozenset({"s"}), frozenset(), frozenset())

    assert store.lock_map.replace([rec("a"), rec("b")], T0) == []
    store.sync_states.write([CredentialSyncState("b", "m1", SyncStatus.APPLIED)], T0)
    store.keystore("b").put("link", b"k")
    assert store.lock_map.replace([rec("a")], T0) == ["b"]
    assert set(store.lock_map.all()) == {"a"}
    assert store.sync_states.for_lock("b") == {}
    assert store.keystore("b").get("link") is None


def test_the_last_access_per_lock_survives_in_the_outbox(store: Store) -> None:
    from gateway.events import AccessEvent

    def ev(i: int, lock: str, kind: str) -> AccessEvent:
        return AccessEvent(f"e{i}", T0, kind, lock_id=lock, reason=f"r{i}")

    store.outbox.add(
        [
            ev(1, "front", "access_allowed"),
            ev(2, "front", "access_denied"),
            ev(3, "front", "unlocked"),
            ev(4, "back", "access_allowed"),
        ]
    )
    last = store.outbox.last_access()
    assert {k: v["event_id"] for k, v in last.items()} == {"front": "e2", "back": "e4"}


def test_migration_5_keeps_sync_states_and_reads_old_rows(tmp_path: Path) -> None:
    """A store of schema 4 (before Seam's states, revocation reasons and ``shared``)."""
    from gateway.store.sync_state import CredentialSyncState, SyncStatus

    path = tmp_path / "db.sqlite"
    with Store.open(path, SecretRef(file=tmp_path / "k")) as s:
        s.cloud.apply_snapshot(snapshot([grant("g1", start=T0)], [code("m1", "g1", "1234")]), T0)
    conn = sqlite3.connect(path)
    # Undo migration 6 (the cursors' origins) and 5 by hand: the v4 shapes of lock_cursors,
    # grants, methods and lock_credentials.
    for column in ("origin", "epoch", "forgotten"):
        conn.execute(f"ALTER TABLE lock_cursors DROP COLUMN {column}")
    for table, extra in (
        ("grants", ("revoked_reason", "seam_notes")),
        ("methods", ("revoked_reason", "issued", "seam_notes")),
    ):
        for column in extra:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("DROP TABLE lock_credentials")
    conn.execute(
        "CREATE TABLE lock_credentials (lock_id TEXT NOT NULL, method_id TEXT NOT NULL,"
        " state TEXT NOT NULL CHECK (state IN"
        " ('scheduled', 'pending', 'applied', 'removing', 'failed')),"
        " tag BLOB, error_code TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
        " updated_at TEXT NOT NULL, PRIMARY KEY (lock_id, method_id))"
    )
    conn.execute("CREATE INDEX lock_credentials_by_method ON lock_credentials(method_id)")
    conn.execute(
        "INSERT INTO lock_credentials VALUES ('front', 'm1', 'applied', x'00', NULL, NULL, 0, ?)",
        (T0.isoformat(),),
    )
    conn.execute("PRAGMA user_version=4")
    conn.commit()
    conn.close()

    with Store.open(path, SecretRef(file=tmp_path / "k")) as s:
        assert s.db.schema_version == len(MIGRATIONS)
        assert s.sync_states.for_lock("front")["m1"].state is SyncStatus.APPLIED
        (m,) = s.cloud.methods()
        assert (m.issued, m.seam_notes, m.revoked_reason) == (True, (), None)
        g = s.cloud.grant("g1")
        assert g is not None and g.seam_notes == ()
        s.sync_states.write([CredentialSyncState("front", "m2", SyncStatus.SHARED)], T0)
        assert s.sync_states.for_lock("front")["m2"].state is SyncStatus.SHARED


async def test_a_delivery_mark_commits_without_waiting_for_the_disk_and_nothing_else_does(
    store: Store, tmp_path: Path
) -> None:
    def synchronous() -> int:
        return int(store.db.conn.execute("PRAGMA synchronous").fetchone()[0])

    full = 2
    assert synchronous() == full
    event = AccessEvent(AccessEvent.new_id(), T0, "access_denied", "front", "gateway", "code")
    store.outbox.add([event])
    seen: list[int] = []
    with store.db.transaction(durable=False):
        seen.append(synchronous())
    assert seen == [1]  # NORMAL for that commit
    assert synchronous() == full
    with pytest.raises(RuntimeError), store.db.transaction(durable=False):
        raise RuntimeError("rolled back")
    assert synchronous() == full
    # a non-durable one joining a transaction is as durable as the outer one
    with store.db.transaction(), store.db.transaction(durable=False):
        seen.append(synchronous())
    assert seen == [1, full]
    [pending] = store.outbox.pending()
    await store.outbox.mark_delivered([pending.seq], T0)
    assert synchronous() == full
    assert store.outbox.pending() == []
    # another connection (a restart after a crash of the process) sees the mark
    other = sqlite3.connect(tmp_path / "lockgate.db")
    assert other.execute("SELECT delivered_at FROM outbox").fetchone()[0] is not None
    other.close()


def test_seen_events_are_found_in_one_pass_by_exact_id(store: Store) -> None:
    """The incremental sync asks about a whole page of events at once (an idle gateway used
    to ask 1,000 times every poll); the answer is by exact id, across the query's chunks."""
    ids = [f"evt_{i}" for i in range(SEEN_CHUNK + 7)]
    seen = [*ids[::3], "evt%", "EVT_1"]
    store.cloud.apply_changes(
        CloudChanges([], [], {}, {}, {}, [], [(e, "2026-03-01T12:00:00Z") for e in seen], None),
        T0,
    )
    asked = [*ids, "evt_", "evt%x", "evt_1_", "evt_%"]
    assert store.cloud.seen_among(asked) == set(ids[::3])
    assert store.cloud.seen_among([]) == set()
    assert store.cloud.event_seen("evt%") and not store.cloud.event_seen("evt%x")


async def test_live_grants_a_snapshot_no_longer_lists_are_found_across_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live ids are read a page at a time (the loop is given back between pages): every
    page boundary, the revoked grants and ids that sort oddly are handled."""
    monkeypatch.setattr(cloud_data, "LIVE_IDS_PAGE", 3)
    ids = [f"g{i:02d}" for i in range(10)] + ["G_", "g%", "z"]
    store.cloud.apply_snapshot(snapshot([grant(g, start=T0) for g in ids], []), T0)
    # Revoked by a later snapshot without them: not live, so never "no longer listed".
    kept = [g for g in ids if g not in {"g03", "g04"}]
    store.cloud.apply_snapshot(snapshot([grant(g, start=T0) for g in kept], []), T0)
    keep = {"g00", "g02", "g05", "g06", "g07", "z"}
    gone = await store.cloud.live_grants_not_in(keep, Slicer())
    assert sorted(g.grant_id for g in gone) == sorted(set(kept) - keep)
    assert await store.cloud.live_grants_not_in(set(ids), Slicer()) == []


def test_events_enter_the_outbox_in_their_order_and_once_however_many_at_a_time(
    store: Store,
) -> None:
    """Groups of every size (the insert goes 64, 32, 16... rows a statement): each event once,
    in the order given, those already there left as they were and not counted."""
    events = [
        AccessEvent(AccessEvent.new_id(), T0, "access_denied", f"lock{i % 3}", "gateway", "code")
        for i in range(300)
    ]
    assert store.outbox.add(events[:1]) == 1
    assert store.outbox.add(events[:100]) == 99  # the first one is there already
    assert store.outbox.add(events[50:237]) == 137
    assert store.outbox.add(events) == 63
    entries = store.outbox.entries()
    assert [e.event_id for e in entries] == [e.event_id for e in events]
    assert [e.payload for e in entries] == [e.payload() for e in events]
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)


async def test_raise_to_commits_off_the_loop_and_never_lowers(store: Store) -> None:
    meta = store.meta
    await meta.raise_to({"floor.a": 10, "floor.b": 5})
    await meta.raise_to({"floor.a": 9, "floor.b": 50})
    assert (meta.get("floor.a"), meta.get("floor.b")) == ("10", "50")
    with pytest.raises(ValueError, match="data version"):
        await meta.raise_to({"data_version": 99})
    other = sqlite3.connect(store.db.path)  # committed: another connection sees it
    try:
        rows = dict(
            other.execute("SELECT key, value FROM meta WHERE key IN ('floor.a', 'floor.b')")
        )
    finally:
        other.close()
    assert rows == {"floor.a": "10", "floor.b": "50"}
