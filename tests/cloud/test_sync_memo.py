"""The full resync reads only what it has not read before (the object memo), and stays exact:
what changed is written, what went is tombstoned, an object some other write touched is read
again, and no secret reaches the raw objects whatever form the cloud's JSON takes."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import gateway.cloud.client
import gateway.sync
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.cloud import models
from gateway.cloud.client import CloudClient
from gateway.models import CloudChanges
from gateway.secrets import SecretRef
from gateway.store.cloud_data import CloudData
from gateway.store.store import Store
from gateway.sync import CloudSync, Scope
from gateway.sync_memo import ObjectMemo
from gateway.views import ViewCache


@dataclass
class Rig:
    cloud: FakeCloudServer
    sync: CloudSync
    views: ViewCache
    store: Store
    space: str
    user: str
    path: Path
    key: SecretRef

    def grant(self, code: str) -> dict[str, Any]:
        return self.cloud.state.grants.create(
            user_identity_id=self.user,
            space_ids=[self.space],
            requested_access_methods=[{"mode": "code", "code": code}],
        )

    def ends_at(self, grant_id: str) -> datetime | None:
        g = self.store.cloud.grant(grant_id)
        assert g is not None
        return g.ends_at


class Counted:
    """Counts the objects the sync decodes and reads in full."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.grants = self.methods = 0
        parse_grant, parse_method = models.parse_grant, models.parse_method

        def grant(obj: Any) -> Any:
            self.grants += 1
            return parse_grant(obj)

        def method(obj: Any, owner: str | None) -> Any:
            self.methods += 1
            return parse_method(obj, owner)

        monkeypatch.setattr(gateway.sync, "parse_grant", grant)
        monkeypatch.setattr(gateway.sync, "parse_method", method)


async def _rig(
    tmp_path: Path, clock: FakeClock, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Rig]:
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Ours")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jo")["user_identity_id"]
        key = SecretRef(file=tmp_path / "k")
        with Store.open(tmp_path / "db", key) as store:
            async with CloudClient(
                cloud.url, cloud.api_key, max_retries=0, transport=transport
            ) as client:
                scope = Scope(frozenset({space}), frozenset(), frozenset())
                views = ViewCache(store)
                sync = CloudSync(client, store, scope, clock, page_size=2, views=views)
                yield Rig(cloud, sync, views, store, space, user, tmp_path / "db", key)


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, clock):
        yield r


async def test_a_resync_reads_in_full_only_the_objects_that_changed(
    rig: Rig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    grants = [rig.grant(f"30{i:02d}") for i in range(4)]
    await rig.sync.full()
    counted = Counted(monkeypatch)
    changed = grants[2]["access_grant_id"]
    new_end = clock.now().replace(year=2031)
    rig.cloud.state.grants.update(changed, ends_at=new_end)
    version = rig.store.cloud.version
    await rig.sync.full()
    assert (counted.grants, counted.methods) == (1, 0)
    assert rig.ends_at(changed) == new_end
    assert rig.store.cloud.version > version
    view = await rig.views.refresh()
    assert view.grants[changed].ends_at == new_end
    assert set(view.grants) == {g["access_grant_id"] for g in grants}

    await rig.sync.full()  # nothing changed since: nothing read in full
    assert (counted.grants, counted.methods) == (1, 0)


async def test_a_memo_an_unchanged_resync_kept_whole_still_sees_the_next_change(
    rig: Rig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unchanged resync keeps the memo's entries as they are (nothing read in full); the
    change after it, on a page whose other objects did not change, is still read and written,
    and a grant that went is still tombstoned."""
    grants = [rig.grant(f"40{i:02d}") for i in range(5)]
    await rig.sync.full()
    memo = rig.sync._memo
    entries = memo.grants
    await rig.sync.full()  # nothing changed
    assert memo.grants is entries and memo.valid_at(rig.store.cloud.version)
    counted = Counted(monkeypatch)
    changed, gone = grants[1]["access_grant_id"], grants[3]["access_grant_id"]
    new_end = clock.now().replace(year=2032)
    rig.cloud.state.grants.update(changed, ends_at=new_end)
    rig.cloud.state.grants.delete(gone)
    await rig.sync.full()
    assert (counted.grants, counted.methods) == (1, 0)
    assert rig.ends_at(changed) == new_end
    stored = rig.store.cloud.grant(gone)
    assert stored is not None and stored.revoked_at is not None
    assert memo.grants is not entries  # made anew from what this resync read
    await rig.sync.full()
    assert (counted.grants, counted.methods) == (1, 0)


async def test_a_page_known_by_its_bytes_is_not_even_split(
    rig: Rig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages the memo knows whole are taken without splitting them into items (their
    pagination, part of the same bytes, comes from the memo); the page holding a changed
    grant is split and read, and every page after it is still followed."""
    grants = [rig.grant(f"50{i:02d}") for i in range(6)]  # 3 pages of 2, each way
    await rig.sync.full()
    split: list[str] = []
    real = gateway.cloud.client.split_page

    def counting(path: str, items_key: str, content: bytes) -> Any:
        split.append(items_key)
        return real(path, items_key, content)

    monkeypatch.setattr(gateway.cloud.client, "split_page", counting)
    await rig.sync.full()
    assert split == []
    counted = Counted(monkeypatch)
    last = grants[-1]["access_grant_id"]
    new_end = clock.now().replace(year=2033)
    rig.cloud.state.grants.update(last, ends_at=new_end)  # on the last page
    await rig.sync.full()
    assert split == ["access_grants"] and (counted.grants, counted.methods) == (1, 0)
    assert rig.ends_at(last) == new_end
    assert set(rig.store.cloud.grants()) == {g["access_grant_id"] for g in grants}  # none lost


async def test_a_resync_with_entrances_and_issues_keeps_the_version_until_they_change(
    rig: Rig,
) -> None:
    rig.cloud.state.add_acs_entrance(display_name="Front", space_ids=[rig.space])
    rig.grant("4001")
    rig.cloud.state.inject_raw(
        "access_grants",
        {
            "access_grant_id": "broken",
            "space_ids": [rig.space],
            "starts_at": "2026-03-02T00:00:00Z",
            "ends_at": "2026-03-01T00:00:00Z",
        },
    )
    await rig.sync.full()
    version = rig.store.cloud.version
    assert [e.space_ids for e in rig.store.cloud.entrances()] == [frozenset({rig.space})]
    assert [i[1] for i in rig.store.cloud.issues()] == ["broken"]
    await rig.sync.full()
    assert rig.store.cloud.version == version  # the same entrances, the same issue
    rig.cloud.state.add_acs_entrance(display_name="Back", space_ids=[rig.space])
    await rig.sync.full()
    assert rig.store.cloud.version > version
    assert len(rig.store.cloud.entrances()) == 2
    version = rig.store.cloud.version
    rig.cloud.state.access_grants.remove("broken")
    await rig.sync.full()
    assert rig.store.cloud.version > version and rig.store.cloud.issues() == []


async def test_a_grant_gone_from_the_cloud_is_tombstoned_by_the_resync(rig: Rig) -> None:
    a, b = rig.grant("4101"), rig.grant("4102")
    await rig.sync.full()
    rig.cloud.state.grants.delete(a["access_grant_id"])
    await rig.sync.full()
    assert set(rig.store.cloud.grants()) == {b["access_grant_id"]}
    (m,) = rig.store.cloud.find_by_secret("code", b"4101")
    assert m.revoked_at is not None
    view = await rig.views.refresh()
    assert a["access_grant_id"] not in view.grants
    assert not view.methods_with("code", b"4101")


async def test_an_object_an_incremental_sync_rewrote_is_read_again_when_its_text_returns(
    rig: Rig, clock: FakeClock
) -> None:
    g = rig.grant("4201")
    gid = g["access_grant_id"]
    await rig.sync.full()
    assert rig.ends_at(gid) is None
    later = clock.now().replace(year=2031)
    rig.cloud.state.grants.update(gid, ends_at=later)
    await rig.sync.incremental()
    assert rig.ends_at(gid) == later
    # The cloud goes back: the grant's text is again, byte for byte, what the first full
    # sync read. The store holds the incremental's version, so it must be written.
    rig.cloud.state.grants.update(gid, ends_at=None)
    await rig.sync.full()
    assert rig.ends_at(gid) is None


async def test_a_resync_with_a_change_and_a_deletion_tombstones_exactly_the_deleted(
    rig: Rig, clock: FakeClock
) -> None:
    a, b, c = rig.grant("4501"), rig.grant("4502"), rig.grant("4503")
    await rig.sync.full()
    rig.cloud.state.grants.delete(a["access_grant_id"])
    later = clock.now().replace(year=2031)
    rig.cloud.state.grants.update(c["access_grant_id"], ends_at=later)
    await rig.sync.full()
    assert set(rig.store.cloud.grants()) == {b["access_grant_id"], c["access_grant_id"]}
    assert rig.ends_at(c["access_grant_id"]) == later
    live = {m.method_id for m in rig.store.cloud.methods()}
    assert live == {b["access_method_ids"][0], c["access_method_ids"][0]}
    # The same again with nothing deleted: nothing more goes.
    rig.cloud.state.grants.update(c["access_grant_id"], ends_at=later.replace(year=2032))
    await rig.sync.full()
    assert set(rig.store.cloud.grants()) == {b["access_grant_id"], c["access_grant_id"]}


async def test_a_change_by_another_writer_makes_the_memo_unusable(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = rig.grant("4301")
    await rig.sync.full()
    # Someone else tombstones the grant (another writer of the store): the memo no longer
    # describes the store, so the next full sync reads everything and puts the grant back.
    with Store.open(rig.path, rig.key) as other:
        other.cloud.apply_changes(
            CloudChanges([], [], {g["access_grant_id"]: "by hand"}, {}, {}, [], [], None),
            datetime.now().astimezone(),
        )
    counted = Counted(monkeypatch)
    await rig.sync.full()
    assert counted.grants == 1
    assert set(rig.store.cloud.grants()) == {g["access_grant_id"]}
    assert [m.revoked_at for m in rig.store.cloud.find_by_secret("code", b"4301")] == [None]


async def test_a_commit_between_staging_and_writing_makes_the_sync_read_everything_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = rig.grant("4401"), rig.grant("4402")
    await rig.sync.full()
    rig.cloud.state.grants.delete(b["access_grant_id"])
    stage = CloudData._stage_snapshot
    other = Store.open(rig.path, rig.key)
    injected: list[bool] = []

    def stage_then_commit_elsewhere(self: CloudData, *args: Any) -> int:
        version = stage(self, *args)
        if not injected:  # a commit after the staging read, before the write
            injected.append(True)
            other.cloud.apply_changes(
                CloudChanges([], [], {a["access_grant_id"]: "by hand"}, {}, {}, [], [], None),
                datetime.now().astimezone(),
            )
        return version

    monkeypatch.setattr(CloudData, "_stage_snapshot", stage_then_commit_elsewhere)
    counted = Counted(monkeypatch)
    try:
        await rig.sync.full()
    finally:
        other.close()
    assert injected
    assert counted.grants == 1  # taken from the memo first, then read again in full
    # The snapshot, read again after the other commit, is what the store holds.
    assert set(rig.store.cloud.grants()) == {a["access_grant_id"]}
    assert [m.revoked_at is None for m in rig.store.cloud.find_by_secret("code", b"4401")] == [True]
    assert all(m.revoked_at for m in rig.store.cloud.find_by_secret("code", b"4402"))


class _EscapedKeys(httpx.AsyncHTTPTransport):
    """The real cloud, with every key of its list answers written with JSON escapes
    (``"\\u0063ode"`` for ``"code"``): valid JSON, the same object, other bytes."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if not request.url.path.endswith("/list"):
            return response
        text = (await response.aread()).decode()
        for key in ("code", "card_number", "instant_key_url"):
            text = text.replace(f'"{key}":', f'"\\u{ord(key[0]):04x}{key[1:]}":')
        return httpx.Response(
            response.status_code, content=text.encode(), headers={"Date": response.headers["Date"]}
        )


async def test_secrets_stay_out_of_the_raw_objects_however_the_keys_are_written(
    tmp_path: Path, clock: FakeClock
) -> None:
    async for rig in _rig(tmp_path, clock, _EscapedKeys()):
        g = rig.grant("90817263")
        await rig.sync.full()
        # The code was read (the escaped key is the key) and is kept sealed only.
        assert [m.method_id for m in rig.store.cloud.find_by_secret("code", b"90817263")] == [
            g["access_method_ids"][0]
        ]
        # A resync that reads the changed grant in full, the rest from the memo.
        rig.cloud.state.grants.update(g["access_grant_id"], ends_at=clock.now().replace(year=2031))
        h = rig.grant("71625344")
        await rig.sync.full()
        dump = json.dumps(
            [dict(r) for r in rig.store.db.conn.execute("SELECT * FROM cloud_objects")]
        )
        assert "90817263" not in dump and "71625344" not in dump
        assert "ik.seam.co" not in dump  # instant_key_url, a bearer URL
        assert rig.store.cloud.raw("access_grant", h["access_grant_id"]) is not None


def test_the_memo_forgets_what_an_incremental_sync_rewrote() -> None:
    from gateway.models import AccessMethod, Grant
    from gateway.sync_memo import GrantRead, MethodRead

    memo = ObjectMemo()
    g1, g2 = Grant("g1", None, None), Grant("g2", None, None)
    m1 = AccessMethod("m1", "g1", "code", secret=b"1")
    m2 = AccessMethod("m2", "g2", "code", secret=b"2")
    memo.replace(
        5,
        {b"a": GrantRead(g1, ("m1",), b"a"), b"b": GrantRead(g2, ("m2",), b"b")},
        {b"c": MethodRead(m1, "g1", b"c"), b"d": MethodRead(m2, "g2", b"d")},
        {b"p": {"g1": GrantRead(g1, ("m1",), b"a")}},
        frozenset({"s"}),
    )
    assert memo.digest(b"{}") == memo.digest(bytearray(b"{}")) != ObjectMemo().digest(b"{}")
    # keyed BLAKE2b of the text, the key this process's own: without it, nobody can tell
    # which text a digest stands for, or make another text with the same digest
    text = b'{"access_grant_id": "g1"}'
    keyed = hashlib.blake2b(text, digest_size=16, key=memo._key).digest()
    assert memo.digest(text) == memo.digest(memoryview(text)) == keyed
    assert memo.digest(text) != hashlib.blake2b(text, digest_size=16).digest()
    assert memo.digest(text) != memo.digest(text + b" ")
    memo.forget(5, 6, ["g1"], [])
    assert memo.valid_at(6) and not memo.valid_at(5)
    assert [r.grant.grant_id for r in memo.grants.values()] == ["g2"]
    assert [r.method.method_id for r in memo.methods.values()] == ["m2"]  # g1's method too
    assert memo.pages == {}  # pages are taken whole or not at all
    memo.forget(5, 7, [], [])  # from a version the memo was not at: unusable
    assert memo.version is None and not memo.grants and not memo.methods


async def test_methods_taken_whole_are_what_taking_their_pages_one_by_one_gives(
    rig: Rig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resync that finds every page of methods known, in the order the last one read them,
    takes the methods whole from the memo: the records it writes, the ids it knows unchanged
    and the memo it leaves are exactly those of taking the same pages one by one."""
    grants = [
        rig.cloud.state.grants.create(
            user_identity_id=rig.user,
            space_ids=[rig.space],
            requested_access_methods=[
                {"mode": "code", "code": f"61{i:02d}"},
                {"mode": "card", "card_number": f"9{i:05d}"},
            ],
        )
        for i in range(5)
    ]  # 5 pages of 2 methods
    await rig.sync.full()
    real_done, real_after = gateway.sync._Collected.methods_done, gateway.sync._Collected.memo_after
    page_by_page = [False]
    seen: list[dict[str, Any]] = []

    async def done(got: Any) -> None:
        if page_by_page[0]:
            await got._take_deferred()  # as each page was taken before
        else:
            await real_done(got)

    def after(got: Any, version: int, revised: tuple[set[str], set[str]]) -> None:
        found = {
            "whole": got._whole,
            "records": got.method_records(),
            "same": set(got.same[1]),
            "read": dict(got.read[1]),
        }
        real_after(got, version, revised)
        memo = got.memo
        found.update(
            methods=dict(memo.methods),
            by_id=dict(memo.methods_by_id),
            method_pages=memo.method_pages,
            pages={k: dict(p) for k, p in memo.pages.items()},
            grants=dict(memo.grants),
        )
        seen.append(found)

    monkeypatch.setattr(gateway.sync._Collected, "methods_done", done)
    monkeypatch.setattr(gateway.sync._Collected, "memo_after", after)
    counted = Counted(monkeypatch)
    for n, whole in enumerate((True, False)):
        page_by_page[0] = not whole
        changed = grants[n + 1]["access_grant_id"]
        rig.cloud.state.grants.update(changed, ends_at=clock.now().replace(year=2034 + n))
        await rig.sync.full()
        assert (counted.grants, counted.methods) == (n + 1, 0)
        assert seen[-1]["whole"] is whole
    a, b = seen
    assert len(a["records"]) == 10 == len(b["records"])
    assert all(map(operator.is_, a["records"], b["records"]))
    for key in ("same", "read", "methods", "by_id", "method_pages"):
        assert a[key] == b[key], key
    assert list(a["read"]) == list(b["read"]) and len(a["method_pages"]) == 5
    methods_pages = set(a["method_pages"])
    assert {k: p for k, p in a["pages"].items() if k in methods_pages} == {
        k: p for k, p in b["pages"].items() if k in methods_pages
    }
    assert {m.method_id for m in rig.store.cloud.methods()} == a["same"]
    view = await rig.views.refresh()
    assert sorted(m.method_id for ms in view.by_grant.values() for m in ms) == sorted(a["same"])


def test_a_memo_that_forgets_forgets_its_pages_of_methods_too() -> None:
    from gateway.models import AccessMethod
    from gateway.sync_memo import MethodRead

    memo = ObjectMemo()
    m1 = MethodRead(AccessMethod("m1", "g1", "code", secret=b"1"), "g1", b"c")

    def known(version: int) -> None:
        pages, cursors = {b"p": {"m1": m1}}, {b"p": None}
        memo.replace(version, {}, {b"c": m1}, pages, frozenset(), cursors, (b"p",), {"m1": m1})

    def none_known() -> bool:
        return not memo.method_pages and not memo.methods_by_id

    known(5)
    assert memo.method_pages == (b"p",) and memo.methods_by_id == {"m1": m1}
    memo.forget(5, 6, [], ["m1"])
    assert none_known()
    memo.replace(6, {}, {b"c": m1}, {}, frozenset(), None, (b"p",))  # without the methods
    assert none_known()
    known(7)
    memo.clear()
    assert none_known()


def test_the_owners_of_methods_taken_in_c_are_those_of_the_loop() -> None:
    from gateway.models import Grant
    from gateway.sync_memo import GrantRead

    reads = [
        GrantRead(Grant(gid, None, None), mids, b"")
        for gid, mids in (("g1", ("m1", "m2")), ("g2", ()), ("g3", ("m2", "m3")), ("g1", ("m4",)))
    ]
    gids = [r.grant.grant_id for r in reads]
    looped = {"m0": "g0", "m3": "g9"}
    taken = dict(looped)
    for r, gid in zip(reads, gids, strict=True):
        for mid in r.method_ids:
            looped[mid] = gid
    gateway.sync._own(taken, reads, gids)
    assert list(taken.items()) == list(looped.items())
    assert taken == {"m0": "g0", "m3": "g3", "m1": "g1", "m2": "g3", "m4": "g1"}
