"""The index of retired secrets: an unknown secret is refused without a query, with the same
reason as before; a revoked one is still told apart (the store is asked); a change of the data
is seen by the next decision whether or not the index has caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.cooperative import Slicer
from gateway.models import AccessMethod, CloudChanges
from gateway.store import retired
from gateway.store.retired import RetiredSecrets, read_retired
from gateway.store.store import Store
from tests.core.conftest import snapshot
from tests.core.factories import code, grant
from tests.core.test_validator import make

CODE = CredentialKind.CODE


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements run on the store's connection meanwhile."""
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        store.db.conn.set_trace_callback(None)


@pytest.fixture
def site(store: Store, clock: FakeClock) -> Store:
    t = clock.now()
    store.cloud.apply_snapshot(
        snapshot(
            [grant("g1", start=t - timedelta(hours=1)), grant("g2", start=t - timedelta(hours=1))],
            [
                code("m1", "g1", "111111"),
                code("m2", "g2", "222222"),
                # a method whose grant the store has never seen: not live, so "revoked"
                AccessMethod("m9", "g-missing", "code", secret=b"999999"),
            ],
        ),
        t,
    )
    return store


async def test_an_unknown_secret_is_refused_without_a_query(site: Store, clock: FakeClock) -> None:
    v = make(site, clock)
    with statements(site) as before_refresh:
        assert v.judge(CODE, b"000000", "front").reason == "unknown_credential"
    assert before_refresh  # the store was asked
    await v.refresh()
    with statements(site) as seen:
        d = v.judge(CODE, b"000000", "front")
        assert v.judge(CODE, b"111111", "front").allow
    assert (d.allow, d.reason, d.detail, d.access_method_id) == (
        False,
        "unknown_credential",
        "",
        None,
    )
    assert seen == []
    # Recorded the same way, and counted against the lockout the same way.
    for pin in (b"1", b"2"):
        assert v.decide(CODE, pin, "front").reason == "unknown_credential"
    assert [e.payload["reason"] for e in site.outbox.entries()] == ["unknown_credential"] * 2
    assert v.decide(CODE, b"3", "front").reason == "unknown_credential"
    assert v.decide(CODE, b"111111", "front").reason == "locked_out"  # lockout=3


async def test_a_revoked_secret_is_still_refused_as_revoked(site: Store, clock: FakeClock) -> None:
    v = make(site, clock)
    t = clock.now()
    site.cloud.apply_snapshot(
        snapshot(
            [grant("g2", start=t - timedelta(hours=1))],
            [code("m2", "g2", "222222"), AccessMethod("m9", "g-missing", "code", secret=b"999999")],
        ),
        t,
    )  # g1 and its m1 are gone from the cloud: tombstoned
    assert v.judge(CODE, b"111111", "front").reason == "revoked"  # before the index is read
    await v.refresh()
    with statements(site) as seen:
        d = v.judge(CODE, b"111111", "front")
    assert (d.reason, d.access_method_id, d.access_grant_id) == ("revoked", "m1", "g1")
    assert seen  # held in the index: the store tells which method and why
    assert v.judge(CODE, b"999999", "front").reason == "revoked"  # its grant is missing
    assert v.judge(CODE, b"222222", "front").allow


async def test_a_change_of_the_data_is_seen_by_the_next_decision(
    site: Store, clock: FakeClock
) -> None:
    v = make(site, clock)
    await v.refresh()
    t = clock.now()
    site.cloud.apply_snapshot(
        snapshot(
            [grant("g1", start=t - timedelta(hours=1)), grant("g3", start=t - timedelta(hours=1))],
            [code("m1", "g1", "111111"), code("m3", "g3", "333333")],
        ),
        t,
    )
    assert v.judge(CODE, b"333333", "front").allow  # new: the view of the new version has it
    # m2 was revoked by this change and the index is of the version before: the store is asked.
    assert v.judge(CODE, b"222222", "front").reason == "revoked"
    with statements(site) as seen:
        assert v.judge(CODE, b"000000", "front").reason == "unknown_credential"
    assert seen
    await v.refresh()
    with statements(site) as seen:
        assert v.judge(CODE, b"000000", "front").reason == "unknown_credential"
    assert seen == []
    assert v.judge(CODE, b"222222", "front").reason == "revoked"


async def test_an_index_read_while_the_data_changes_is_dropped(
    site: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retired, "PAGE", 1)  # a page a row, and a yield after each
    version = site.meta.data_version
    reading = asyncio.ensure_future(read_retired(site.db, lambda: version.current, Slicer(0)))
    await asyncio.sleep(0)  # the first page is read; the reader waits for its next turn
    assert not reading.done()
    site.cloud.apply_changes(
        CloudChanges([], [], {"g1": "revoked by an operator"}, {}, {}, [], [], None), clock.now()
    )
    async with asyncio.timeout(5):
        assert await reading is None
    again = await read_retired(site.db, lambda: version.current, Slicer(0))
    assert again is not None and again.version == version.current and len(again) == 2


def test_the_index_keeps_eight_bytes_a_tombstone_and_never_misses_one() -> None:
    indexes = [bytes([i]) * 32 for i in range(200)]
    index = RetiredSecrets(7, indexes)
    assert len(index) == 200 and index._prefixes.itemsize == 8
    assert all(index.may_hold(i) for i in indexes)
    assert not index.may_hold(b"\xff" * 32) and not RetiredSecrets(7, []).may_hold(b"\0" * 32)
    # Two indexes sharing their first 8 bytes: "may hold" (the store then decides).
    assert index.may_hold(bytes([5]) * 8 + b"\0" * 24)
