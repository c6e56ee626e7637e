"""Shared plans: locks of one scope share one plan, and a credential two scopes hold is made
and tagged once per data version, with the window each lock's capabilities call for."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from gateway.planner import CloudView, LockScope, plan, plan_shared
from tests.core.factories import caps, code, grant

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
A = LockScope("a", frozenset({"space-a"}), frozenset(), frozenset())
A2 = LockScope("a2", frozenset({"space-a"}), frozenset(), frozenset())
B = LockScope("b", frozenset({"space-b"}), frozenset(), frozenset())


class Tags:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, ...]] = []

    def __call__(self, *parts: bytes) -> bytes:
        self.calls.append(parts)
        return hashlib.sha256(b"|".join(parts)).digest()[:8]


def _view() -> CloudView:
    both = grant("g1", start=T0 - timedelta(minutes=5), spaces=("space-a", "space-b"))
    only_a = grant("g2", start=T0 - timedelta(minutes=5), spaces=("space-a",))
    return CloudView(
        {"g1": both, "g2": only_a}, [code("m1", "g1", "1111"), code("m2", "g2", "2222")], []
    )


async def test_a_credential_two_scopes_hold_is_made_once() -> None:
    view, tags = _view(), Tags()
    hour = timedelta(hours=1)
    pa = await plan_shared(view, A, caps(windows=True), T0, lead_time=hour, tag=tags)
    assert await plan_shared(view, A2, caps(windows=True), T0, lead_time=hour, tag=tags) is pa
    pb = await plan_shared(view, B, caps(windows=True), T0, lead_time=hour, tag=tags)
    assert set(pa.desired) == {"m1", "m2"} and set(pb.desired) == {"m1"}
    assert pb.desired["m1"] is pa.desired["m1"]
    assert [c[0] for c in tags.calls] == [b"m1", b"m2"]  # m1 once, for both scopes
    # The same as planned alone, lock by lock.
    alone = plan(view, B, caps(windows=True), T0, lead_time=hour, tag=Tags())
    assert alone.desired == pb.desired


async def test_locks_with_and_without_windows_get_their_own_credential() -> None:
    view, tags = _view(), Tags()
    hour = timedelta(hours=1)
    with_w = await plan_shared(view, A, caps(windows=True), T0, lead_time=hour, tag=tags)
    without = await plan_shared(view, B, caps(windows=False), T0, lead_time=hour, tag=tags)
    held, plain = with_w.desired["m1"], without.desired["m1"]
    assert held.window is not None and plain.window is None
    assert held.window.starts_at == (T0 - timedelta(minutes=5)).replace(microsecond=0) + timedelta(
        seconds=1
    )  # rounded inward to a whole second
    assert held.tag != plain.tag
    assert held.secret == plain.secret == b"1111"


async def test_a_new_version_takes_the_credentials_that_did_not_change() -> None:
    hour = timedelta(hours=1)
    old, tags = _view(), Tags()
    before = await plan_shared(old, A, caps(windows=True), T0, lead_time=hour, tag=tags)
    # The next version: g2's window moved, m1's code changed, and a new m3 came.
    moved = grant("g2", start=T0 - timedelta(minutes=9), spaces=("space-a",))
    both = grant("g1", start=T0 - timedelta(minutes=5), spaces=("space-a", "space-b"))
    g3 = grant("g3", start=T0 - timedelta(minutes=5), spaces=("space-a",))
    new = CloudView(
        {"g1": both, "g2": moved, "g3": g3},
        [code("m1", "g1", "1199"), code("m2", "g2", "2222"), code("m3", "g3", "3333")],
        [],
        version=2,
    )
    new.inherit(old)
    tags.calls.clear()
    after = await plan_shared(new, A, caps(windows=True), T0, lead_time=hour, tag=tags)
    # m1 (new code) and m2 (new window) and m3 (new) are made anew; nothing is taken stale.
    assert sorted(c[0] for c in tags.calls) == [b"m1", b"m2", b"m3"]
    assert after.desired["m1"].secret == b"1199"
    assert after.desired["m1"].tag != before.desired["m1"].tag
    assert after.desired == plan(new, A, caps(windows=True), T0, lead_time=hour, tag=Tags()).desired

    # A version after that, with nothing changed for these methods: all taken as they were.
    same = CloudView(new.grants, [m for ms in new.by_grant.values() for m in ms], [], version=3)
    same.inherit(new)
    tags.calls.clear()
    again = await plan_shared(same, A, caps(windows=True), T0, lead_time=hour, tag=tags)
    assert tags.calls == []
    assert all(again.desired[m] is after.desired[m] for m in after.desired)
