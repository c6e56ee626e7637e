"""The data version in memory: it follows commits, never runs ahead of them, and a decision
never runs on an index older than the committed data, even while the sync's bulk write commits
on its own connection in another thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig, ValidatorConfig
from gateway.lockout import LockoutPolicy
from gateway.planner import LockScope
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.store.timefmt import to_db
from gateway.timetrust import TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache
from tests.core.conftest import snapshot
from tests.core.factories import code, grant

CODE = CredentialKind.CODE
WAIT_S = 10


def _validator(store: Store, clock: FakeClock) -> Validator:
    scopes = {"front": LockScope("front", frozenset({"space-a"}), frozenset(), frozenset())}
    cfg = TimeConfig()
    return Validator(
        store,
        ViewCache(store).current,
        scopes,
        clock,
        TimeTrust(clock, store.meta, cfg, kernel=lambda: True),
        cfg,
        LockoutPolicy(store.lockouts, ValidatorConfig()),
    )


def _seed(store: Store, clock: FakeClock) -> None:
    t = clock.now()
    store.cloud.apply_snapshot(
        snapshot([grant("g1", start=t - timedelta(hours=1))], [code("m1", "g1", "424242")]), t
    )


def _stored_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
    return int(row[0])


def test_the_version_follows_commits_and_survives_a_restart(
    store: Store, clock: FakeClock
) -> None:
    before = store.cloud.version
    _seed(store, clock)
    assert store.cloud.version == before + 1 == _stored_version(store.db.path)
    with Store.open(store.db.path, SecretRef(file=store.db.path.parent / "store.key")) as again:
        assert again.cloud.version == before + 1


def test_a_rolled_back_change_does_not_move_the_version(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    before = store.cloud.version

    def fail_after_the_bump() -> None:
        with store.db.transaction():
            with store.db.transaction() as inner:  # joins the outer one
                store.meta.data_version.bump(inner)
            assert store.cloud.version == before  # not committed yet: not seen yet
            raise RuntimeError("the write fails after the bump")

    with pytest.raises(RuntimeError, match="after the bump"):
        fail_after_the_bump()
    assert store.cloud.version == before == _stored_version(store.db.path)
    with store.db.transaction() as conn:
        assert store.meta.data_version.bump(conn) == before + 1
    assert store.cloud.version == before + 1 == _stored_version(store.db.path)


def test_the_version_moves_only_through_its_bump(store: Store) -> None:
    with pytest.raises(ValueError, match="moves only through"):
        store.meta.set("data_version", "99")
    with pytest.raises(RuntimeError, match="no transaction"):  # outside one: nothing to follow
        store.meta.data_version.bump(store.db.conn)


async def test_a_decision_right_after_a_bulk_commit_lands_sees_the_revocation(
    store: Store, clock: FakeClock
) -> None:
    """The window that matters: the bulk write's COMMIT is visible on the store's connection
    but the event loop has not yet resumed the writer (which is what moves the version in
    memory). A door asking then must already be refused."""
    _seed(store, clock)
    v = _validator(store, clock)
    assert v.decide(CODE, b"424242", "front").allow  # the view of the old version is built
    before = store.cloud.version
    inside, go = threading.Event(), threading.Event()

    def revoke(conn: sqlite3.Connection) -> None:
        inside.set()
        assert go.wait(WAIT_S)
        stamp = to_db(clock.now())
        conn.execute("UPDATE grants SET revoked_at = ?, revoked_reason = 'fired'", (stamp,))
        conn.execute("UPDATE methods SET revoked_at = ?", (stamp,))
        store.meta.data_version.bump(conn)

    writer = asyncio.create_task(store.db.bulk_write(revoke))
    assert await asyncio.to_thread(inside.wait, WAIT_S)  # the writer holds the write lock
    # From here on the loop does not run until the decision is made: the writer's task
    # cannot resume, so nothing in memory has heard of the commit.
    go.set()
    other = sqlite3.connect(store.db.path, timeout=WAIT_S, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # granted once the writer's COMMIT is done
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert not writer.done()
    d = v.decide(CODE, b"424242", "front")
    assert (d.allow, d.reason, d.detail) == (False, "revoked", "fired")
    assert store.cloud.version == before + 1
    await writer
    assert not store.db.writing_elsewhere
    assert store.cloud.version == before + 1 == _stored_version(store.db.path)
    assert v.decide(CODE, b"424242", "front").reason == "revoked"


async def test_a_failed_bulk_write_leaves_the_version(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    before = store.cloud.version

    def fail(conn: sqlite3.Connection) -> None:
        store.meta.data_version.bump(conn)
        raise sqlite3.OperationalError("the write fails after the bump")

    with pytest.raises(sqlite3.OperationalError):
        await store.db.bulk_write(fail)
    assert not store.db.writing_elsewhere
    assert store.cloud.version == before == _stored_version(store.db.path)


async def test_a_bulk_write_whose_waiter_is_cancelled_still_moves_the_version(
    store: Store, clock: FakeClock
) -> None:
    """The thread cannot be stopped: its commit lands after the caller gave up waiting, and
    the version in memory must still follow it (and the next bulk write wait for it)."""
    _seed(store, clock)
    before = store.cloud.version
    inside, go = threading.Event(), threading.Event()

    def bump(conn: sqlite3.Connection) -> None:
        inside.set()
        assert go.wait(WAIT_S)
        store.meta.data_version.bump(conn)

    writer = asyncio.create_task(store.db.bulk_write(bump))
    assert await asyncio.to_thread(inside.wait, WAIT_S)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert store.db.writing_elsewhere  # the thread is still in its transaction
    assert store.cloud.version == before
    go.set()

    def nothing(conn: sqlite3.Connection) -> None:
        pass

    await store.db.bulk_write(nothing)  # runs only after the cancelled one's thread ended
    assert store.cloud.version == before + 1 == _stored_version(store.db.path)
