"""What makes a big full sync cheap, checked for what it must keep: the view handed over from
memory is the one the store gives back, an unchanged snapshot rewrites nothing, and the store
closes safely under a bulk write still running in its thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.cloud.client import CloudClient
from gateway.cloud.models import parse_grant, raw_without_secrets
from gateway.planner import CloudView
from gateway.secrets import SecretRef
from gateway.store.db import Database
from gateway.store.store import Store
from gateway.sync import CloudSync, Scope
from gateway.views import ViewCache


@dataclass
class Rig:
    cloud: FakeCloudServer
    sync: CloudSync
    views: ViewCache
    store: Store
    space: str
    user: str

    def grant(self, code: str, **kw: object) -> dict:  # type: ignore[type-arg]
        return self.cloud.state.grants.create(
            user_identity_id=self.user,
            space_ids=[self.space],
            requested_access_methods=[{"mode": "code", "code": code}],
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Ours")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jo")["user_identity_id"]
        with Store.open(tmp_path / "db", SecretRef(file=tmp_path / "k")) as store:
            async with CloudClient(cloud.url, cloud.api_key, max_retries=0) as client:
                scope = Scope(frozenset({space}), frozenset(), frozenset())
                views = ViewCache(store)
                # page size 2: every listing comes in several pages, read as they arrive
                sync = CloudSync(client, store, scope, clock, page_size=2, views=views)
                yield Rig(cloud, sync, views, store, space, user)


def _same(adopted: CloudView, read_back: CloudView) -> None:
    assert adopted.version == read_back.version
    assert adopted.grants == read_back.grants
    assert {k: sorted(v, key=lambda m: m.method_id) for k, v in adopted.by_grant.items()} == {
        k: sorted(v, key=lambda m: m.method_id) for k, v in read_back.by_grant.items()
    }
    assert adopted.by_secret == read_back.by_secret
    assert adopted.plain == read_back.plain
    assert adopted.grants_by_space == read_back.grants_by_space


async def test_the_view_handed_over_by_a_full_sync_is_the_one_the_store_gives_back(
    rig: Rig,
) -> None:
    rig.grant("1111", starts_at=datetime(2030, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))))
    for i in range(4):
        rig.grant(f"20{i:02d}")
    gone = rig.grant("3333")
    await rig.sync.full()
    rig.cloud.state.grants.delete(gone["access_grant_id"])
    await rig.sync.full()
    adopted = await rig.views.refresh()  # already built by the sync: returned as is
    assert len(adopted.grants) == 5 and gone["access_grant_id"] not in adopted.grants
    read_back = await ViewCache(rig.store).refresh()  # read and decrypted from SQLite
    assert read_back is not adopted
    _same(adopted, read_back)


async def test_an_unchanged_snapshot_rewrites_nothing_and_a_changed_method_only_itself(
    rig: Rig, clock: FakeClock
) -> None:
    grants = [rig.grant(f"40{i:02d}") for i in range(3)]
    await rig.sync.full()

    def sealed() -> dict[str, bytes]:
        rows = rig.store.db.conn.execute("SELECT method_id, secret_ct FROM methods")
        return {r[0]: r[1] for r in rows}

    def raw_rows() -> int:
        return int(rig.store.db.conn.execute("SELECT count(*) FROM cloud_objects").fetchone()[0])

    before, objects = sealed(), raw_rows()
    version = rig.store.cloud.version
    view = await rig.views.refresh()
    synced = rig.store.meta.get("last_full_sync")
    clock.advance(hours=1)
    await rig.sync.full()
    assert sealed() == before  # secrets are sealed with a fresh nonce: none was re-sealed
    assert raw_rows() == objects
    # Nothing changed: the data version stays, so the view (and the plans made on it) hold.
    assert rig.store.cloud.version == version
    assert await rig.views.refresh() is view
    assert rig.store.meta.get("last_full_sync") != synced  # the sync itself is recorded

    mid = grants[1]["access_method_ids"][0]
    rig.cloud.state.methods.update(mid, code="4999")
    await rig.sync.full()
    after = sealed()
    assert {m for m in after if after[m] != before[m]} == {mid}
    assert [m.method_id for m in rig.store.cloud.find_by_secret("code", b"4999")] == [mid]
    assert rig.store.cloud.find_by_secret("code", b"4001") == []


async def test_closing_waits_for_a_bulk_write_still_running_in_its_thread(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "db")
    inside = threading.Event()

    def write(conn: sqlite3.Connection) -> None:
        inside.set()
        threading.Event().wait(0.2)  # the write is slow; close() comes meanwhile
        conn.execute("INSERT INTO meta VALUES ('k', 'v')")

    task = asyncio.create_task(db.bulk_write(write))
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()  # the caller gives up; the thread cannot, and goes on to commit
    db.close()  # closing the connection under the thread would crash the interpreter
    with pytest.raises(asyncio.CancelledError):
        await task
    check = sqlite3.connect(tmp_path / "db")
    assert check.execute("SELECT value FROM meta WHERE key = 'k'").fetchone() == ("v",)
    check.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await db.bulk_write(write)


def test_a_grant_time_with_an_offset_is_kept_in_utc_as_the_store_gives_it_back() -> None:
    grant, problem = parse_grant(
        {"access_grant_id": "g", "starts_at": "2030-01-01T10:00:00+02:00", "space_ids": ["s"]}
    )
    assert problem is None and grant is not None and grant.starts_at is not None
    assert grant.starts_at.utcoffset() == timedelta(0)
    assert grant.starts_at.isoformat() == "2030-01-01T08:00:00+00:00"


def test_secret_fields_are_removed_at_any_depth_and_lists_of_scalars_kept() -> None:
    raw: dict[str, Any] = {
        "a": [[{"code": "482913", "x": [{"card_number": "99001122"}]}]],
        "ids": ["m1", "m2"],
        "mobile_key": {"public_key": "k"},
        "d": {"e": [{"instant_key_url": "https://k/1", "client_session_token": "t"}]},
    }
    text = raw_without_secrets(raw)
    assert json.loads(text) == {"a": [[{"x": [{}]}]], "ids": ["m1", "m2"], "d": {"e": [{}]}}
    for secret in ("482913", "99001122", "https://k/1", '"t"', "public_key"):
        assert secret not in text
    assert raw["a"][0][0]["code"] == "482913"  # the object read is not changed


async def test_a_full_sync_gives_the_heap_back_before_it_builds_the_view(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The raw objects are written and freed, and their heap pages returned, before the view
    is indexed (else the view's objects pile on top of the freed heap: the sync's peak)."""
    for i in range(3):
        rig.grant(f"50{i:02d}")
    steps: list[str] = []
    adopt = rig.views.adopt

    async def adopting(version: int, *args: Any) -> None:
        steps.append("adopt")
        await adopt(version, *args)

    def trim() -> bool:
        steps.append("trim")
        return True

    monkeypatch.setattr(rig.views, "adopt", adopting)
    monkeypatch.setattr("gateway.sync.heap.trim", trim)
    await rig.sync.full()
    assert steps == ["trim", "adopt", "trim"]
    view = rig.views.latest
    assert view is not None and len(view.grants) == 3
