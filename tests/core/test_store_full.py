"""The store on a really full disk (a tmpfs filled to ENOSPC): a write fails whole and says
so, what was committed stays, memory keeps what must not be forgotten, and writes succeed again
once there is room."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.secrets import SecretRef
from gateway.store.db import StoreFullError
from gateway.store.lockouts import Failure, LockoutState
from gateway.store.store import Store
from tests.fullfs import fill, integrity, shrink_wal, small_tmpfs


@pytest.fixture
def full(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        store = Store.open(disk / "lockgate.db", SecretRef(file=tmp_path / "store.key"))
        try:
            store.meta.set("before", "committed")
            shrink_wal(store.db.conn)
            yield store, fill(disk)
        finally:
            store.close()


def test_a_write_on_a_full_disk_fails_whole_and_recovers(
    full: tuple[Store, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, filler = full
    caplog.set_level(logging.WARNING, logger="gateway.store.db")

    def two_writes() -> None:
        with store.db.transaction():
            store.meta.set("a", "1")
            store.meta.set("b", "2")

    with pytest.raises(StoreFullError, match="disk is full"):
        two_writes()
    assert store.db.full and store.db.full_since is not None
    assert "store_full:" in caplog.text
    assert not store.db.conn.in_transaction  # rolled back: the next write can begin
    assert store.meta.get("a") is None and store.meta.get("before") == "committed"
    with pytest.raises(StoreFullError):
        store.meta.set("a", "1")

    filler.unlink()
    store.meta.set("a", "1")
    assert not store.db.full and store.meta.get("a") == "1"
    assert "the store takes writes again" in caplog.text
    assert integrity(store.db.path) == "ok"


def test_lockout_counts_and_mobile_key_challenges_survive_a_full_disk(
    full: tuple[Store, Path],
) -> None:
    store, filler = full
    state = LockoutState([Failure(datetime.now(UTC))])
    store.lockouts.put("front", "code", state)  # in force now, written with the next group
    with pytest.raises(StoreFullError):
        store.decisions.record_now([])
    assert len(store.lockouts.get("front", "code").failures) == 1  # counted all the same

    seen = store.mobile_key_challenges
    assert seen.first_use("m1", b"challenge") is True
    assert seen.first_use("m1", b"challenge") is False  # a replay, refused from memory

    filler.unlink()
    store.decisions.record_now([])  # what the failed write held is written with the next one
    seen.flush()
    key = SecretRef(file=store.db.path.parent.parent / "store.key").read_bytes()
    reopened = Store(store.db.path, key)
    try:
        assert len(reopened.lockouts.get("front", "code").failures) == 1
        assert reopened.mobile_key_challenges.first_use("m1", b"challenge") is False
    finally:
        reopened.close()

