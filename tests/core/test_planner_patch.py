"""A new version's plans patched from the last version's (gateway.planner._patched) are the
plans made from scratch: random sites, random changes (windows, spaces, codes shared between
users, revocations, deleted grants and methods, full locks), compared field by field."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import Capabilities, CredentialKind
from gateway.models import AccessMethod, Grant
from gateway.planner import PATCH_MAX_SHARE, CloudView, LockScope, Plan, plan, plan_shared

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPACES = ("space-a", "space-b", "space-c")
SCOPES = (
    LockScope("a", frozenset({"space-a"}), frozenset(), frozenset()),
    LockScope("ab", frozenset({"space-a", "space-b"}), frozenset(), frozenset()),
)
SECRETS = [b"1111", b"2222", b"3333", b"4444", b"12", None]
"""A few secrets, so that users share codes; ``b"12"`` breaks the code rule; ``None``: not
issued, or broken."""


def tag(*parts: bytes) -> bytes:
    return hashlib.sha256(b"|".join(parts)).digest()[:8]


def caps(slots: int, windows: bool) -> Capabilities:
    return Capabilities(
        slots=slots,
        max_batch=5,
        kinds=frozenset({CredentialKind.CODE, CredentialKind.CARD}),
        enforces_time_windows=windows,
        code_min_length=4,
        code_max_length=8,
    )


@st.composite
def grants(draw: st.DrawFn, gid: str) -> Grant:
    start = draw(st.sampled_from([None, -30, -2, 0, 1, 5]))
    length = draw(st.sampled_from([None, 1, 3, 48]))
    starts_at = None if start is None else T0 + timedelta(hours=start, seconds=0.5)
    return Grant(
        grant_id=gid,
        starts_at=starts_at,
        ends_at=None if length is None or starts_at is None else starts_at + length * HOUR,
        space_ids=frozenset(draw(st.sets(st.sampled_from(SPACES), min_size=1, max_size=2))),
        entrance_ids=frozenset(),
        user_identity_id=draw(st.sampled_from(["user-1", "user-2", None])),
        problem=draw(st.sampled_from([None, None, None, "bad grant"])),
        revoked_at=draw(st.sampled_from([None, None, None, None, T0 - HOUR])),
    )


@st.composite
def methods(draw: st.DrawFn, mid: str, gid: str) -> AccessMethod:
    secret = draw(st.sampled_from(SECRETS))
    return AccessMethod(
        mid,
        gid,
        draw(st.sampled_from(["code", "code", "card", "cloud_key"])),
        secret=secret,
        problem=draw(st.sampled_from([None, None, None, "bad method"])),
        issued=draw(st.booleans()) if secret is None else True,
        revoked_at=draw(st.sampled_from([None, None, None, None, T0 - HOUR])),
    )


@st.composite
def sites(draw: st.DrawFn) -> tuple[dict[str, Grant], dict[str, list[AccessMethod]]]:
    n = draw(st.integers(0, 8))
    gs = {f"g{i}": draw(grants(f"g{i}")) for i in range(n)}
    ms = {
        gid: [draw(methods(f"{gid}-m{j}", gid)) for j in range(draw(st.integers(0, 3)))]
        for gid in gs
    }
    return gs, ms


@st.composite
def changes(
    draw: st.DrawFn, site: tuple[dict[str, Grant], dict[str, list[AccessMethod]]]
) -> tuple[dict[str, Grant], dict[str, list[AccessMethod]]]:
    gs, ms = dict(site[0]), {gid: list(m) for gid, m in site[1].items()}
    for gid in sorted(gs):
        what = draw(st.sampled_from(["same"] * 4 + ["equal", "grant", "gone", "method", "add"]))
        if what == "equal":  # an equal record, not the same object
            gs[gid] = replace(gs[gid])
        elif what == "grant":
            gs[gid] = draw(grants(gid))
        elif what == "gone":
            del gs[gid]
            del ms[gid]
        elif what == "method" and ms[gid]:
            j = draw(st.integers(0, len(ms[gid]) - 1))
            if draw(st.booleans()):
                ms[gid][j] = draw(methods(ms[gid][j].method_id, gid))
            else:
                del ms[gid][j]
        elif what == "add":
            ms[gid].append(draw(methods(f"{gid}-new", gid)))
    for i in range(draw(st.integers(0, 2))):
        gid = f"n{i}"
        gs[gid] = draw(grants(gid))
        ms[gid] = [draw(methods(f"{gid}-m0", gid))]
    return gs, ms


def view(
    site: tuple[dict[str, Grant], dict[str, list[AccessMethod]]], version: int
) -> CloudView:
    gs, ms = site
    return CloudView(gs, [m for gid in gs for m in ms[gid]], [], version=version)


def assert_same(patched: Plan, fresh: Plan) -> None:
    assert patched.desired == fresh.desired
    assert patched.scheduled == fresh.scheduled
    assert patched.rejected == fresh.rejected
    assert patched.waiting == fresh.waiting
    assert patched.shared == fresh.shared
    assert patched.notes == fresh.notes
    # a patched plan may name an earlier moment to look again (never a later one)
    if fresh.next_change is None:
        return
    assert patched.next_change is not None and patched.next_change <= fresh.next_change


Site = tuple[dict[str, Grant], dict[str, list[AccessMethod]]]
PatchCase = tuple[Site, Site, timedelta, Capabilities]


@st.composite
def patch_cases(draw: st.DrawFn) -> PatchCase:
    """A site, the site after random changes, how long after the last version's plans the new
    version is planned, and the lock's capabilities."""
    before = draw(sites())
    after = draw(changes(before))
    later = draw(st.sampled_from([timedelta(0), timedelta(minutes=20), 3 * HOUR]))
    return before, after, later, caps(draw(st.sampled_from([2, 4, 100])), draw(st.booleans()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=patch_cases())
def test_a_patched_plan_is_the_plan_made_from_scratch(case: PatchCase) -> None:
    before, after, later, lock = case

    async def both() -> None:
        old = view(before, 1)
        await plan_every_scope(old, lock)
        new = view(after, 2)
        new.inherit(old)
        await assert_patched_as_fresh(new, lock, later)

    asyncio.run(both())


async def plan_every_scope(v: CloudView, lock: Capabilities) -> None:
    """Plan ``v`` for every scope at ``T0``: the plans a later version is patched from."""
    for scope in SCOPES:
        await plan_shared(v, scope, lock, T0, lead_time=HOUR, tag=tag)


async def assert_patched_as_fresh(new: CloudView, lock: Capabilities, later: timedelta) -> None:
    """Every scope's plan of ``new`` (patched from the view it inherited) at ``T0 + later``
    is the plan made from scratch."""
    t = T0 + later
    for scope in SCOPES:
        patched = await plan_shared(new, scope, lock, t, lead_time=HOUR, tag=tag)
        assert_same(patched, plan(new, scope, lock, t, lead_time=HOUR, tag=tag))


async def test_only_the_changed_secrets_are_planned_again() -> None:
    """An unchanged grant's credential is the one of the last version's plan (same object);
    a changed one's is made anew, and a grant that left the scope leaves the plan."""
    g1 = Grant("g1", T0 - HOUR, T0 + 9 * HOUR, frozenset({"space-a"}), frozenset())
    g2 = Grant("g2", T0 - HOUR, T0 + 9 * HOUR, frozenset({"space-a"}), frozenset())
    g3 = Grant("g3", T0 - HOUR, T0 + 9 * HOUR, frozenset({"space-a"}), frozenset())
    m1 = AccessMethod("m1", "g1", "code", secret=b"1111")
    m2 = AccessMethod("m2", "g2", "code", secret=b"2222")
    m3 = AccessMethod("m3", "g3", "code", secret=b"3333")
    lock, scope = caps(10, True), SCOPES[0]
    old = CloudView({"g1": g1, "g2": g2, "g3": g3}, [m1, m2, m3], [], version=1)
    first = await plan_shared(old, scope, lock, T0, lead_time=HOUR, tag=tag)
    moved = replace(g2, ends_at=T0 + 30 * HOUR)
    elsewhere = replace(g3, space_ids=frozenset({"space-c"}))
    new = CloudView({"g1": g1, "g2": moved, "g3": elsewhere}, [m1, m2, m3], [], version=2)
    new.inherit(old)
    assert new.before is not None and new.before.changed == {"g2", "g3"}
    second = await plan_shared(new, scope, lock, T0 + HOUR, lead_time=HOUR, tag=tag)
    assert second.desired["m1"] is first.desired["m1"]
    assert second.desired["m2"] != first.desired["m2"]
    assert second.desired["m2"].window is not None
    assert second.desired["m2"].window.ends_at == (T0 + 30 * HOUR).replace(microsecond=0)
    assert set(second.desired) == {"m1", "m2"}
    assert second.desired == plan(new, scope, lock, T0 + HOUR, lead_time=HOUR, tag=tag).desired


async def test_a_code_freed_by_a_changed_method_goes_to_the_grant_refused_it_before() -> None:
    """Two users ask for one code: the grant that starts first holds it, the other is refused.
    When the holder's method changes to another code, the refused one (whose grant did not
    change) holds its code in the patched plan."""
    a = frozenset({"space-a"})
    first = Grant("g1", T0 - 2 * HOUR, T0 + 9 * HOUR, a, user_identity_id="u1")
    second = Grant("g2", T0 - HOUR, T0 + 9 * HOUR, a, user_identity_id="u2")
    m1 = AccessMethod("m1", "g1", "code", secret=b"1111")
    m2 = AccessMethod("m2", "g2", "code", secret=b"1111")
    lock, scope = caps(10, True), SCOPES[0]
    old = CloudView({"g1": first, "g2": second}, [m1, m2], [], version=1)
    before = await plan_shared(old, scope, lock, T0, lead_time=HOUR, tag=tag)
    assert set(before.desired) == {"m1"} and before.rejected["m2"][0] == "duplicate_code_on_device"
    new = CloudView({"g1": first, "g2": second}, [replace(m1, secret=b"9999"), m2], [], version=2)
    new.inherit(old)
    after = await plan_shared(new, scope, lock, T0, lead_time=HOUR, tag=tag)
    assert set(after.desired) == {"m1", "m2"} and not after.rejected
    assert_same(after, plan(new, scope, lock, T0, lead_time=HOUR, tag=tag))


async def test_a_plan_made_from_scratch_after_patched_ones_takes_their_credentials() -> None:
    """Patched plans keep their unchanged credentials without adding them to the view's
    cache; a plan made from scratch a version later still takes them (no tag made again)
    and makes anew only those that changed."""
    tags: list[bytes] = []

    def counting(*parts: bytes) -> bytes:
        tags.append(parts[0])
        return tag(*parts)

    a = frozenset({"space-a"})
    g1 = Grant("g1", T0 - HOUR, T0 + 9 * HOUR, a)
    g2 = Grant("g2", T0 - HOUR, T0 + 9 * HOUR, a)
    methods = [AccessMethod("m1", "g1", "code", secret=b"1111")]
    methods.append(AccessMethod("m2", "g2", "code", secret=b"2222"))
    lock, scope = caps(10, True), SCOPES[0]
    views = [CloudView({"g1": g1, "g2": g2}, methods, [], version=1)]
    await plan_shared(views[0], scope, lock, T0, lead_time=HOUR, tag=counting)
    for version in (2, 3):  # g2's end moves twice; the plans are patched
        g2 = replace(g2, ends_at=g2.ends_at + HOUR if g2.ends_at else None)
        views.append(CloudView({"g1": g1, "g2": g2}, methods, [], version=version))
        views[-1].inherit(views[-2])
        await plan_shared(views[-1], scope, lock, T0, lead_time=HOUR, tag=counting)
    assert tags == [b"m1", b"m2", b"m2", b"m2"]  # m1 once, m2 for each of its windows
    g2 = replace(g2, ends_at=T0 + 20 * HOUR)
    last = CloudView({"g1": g1, "g2": g2}, methods, [], version=4)
    last.inherit(views[-1])
    tags.clear()
    other = await plan_shared(last, scope, lock, T0, lead_time=2 * HOUR, tag=counting)
    assert tags == [b"m2"]  # a scope never planned before: from scratch, m1 taken
    assert other.desired["m1"] is views[0].plans[next(iter(views[0].plans))][1].desired["m1"]
    assert other.desired == plan(last, scope, lock, T0, lead_time=2 * HOUR, tag=tag).desired


async def test_a_version_where_most_grants_changed_is_planned_afresh_not_patched() -> None:
    """Patching is kept for small changes: past PATCH_MAX_SHARE of the grants (a first full
    sync after an empty start changes all of them) the new version plans from scratch, which
    is sliced, instead of patching in one go on the loop. The plans are the same either way."""
    n = 1000
    gs = {
        f"g{i}": Grant(f"g{i}", T0 - HOUR, T0 + 9 * HOUR, frozenset({"space-a"}), frozenset())
        for i in range(n)
    }
    ms = [AccessMethod(f"m{i}", f"g{i}", "code", secret=b"%04d" % (1000 + i)) for i in range(n)]
    lock, scope = caps(2 * n, True), SCOPES[0]
    empty = CloudView({}, [], [], version=1)
    await plan_shared(empty, scope, lock, T0, lead_time=HOUR, tag=tag)
    full = CloudView(gs, ms, [], version=2)
    full.inherit(empty)
    assert full.before is None  # every grant is new: planned afresh
    first = await plan_shared(full, scope, lock, T0, lead_time=HOUR, tag=tag)
    assert len(first.desired) == n

    def moved(count: int, version: int) -> CloudView:
        later = {**gs}
        for i in range(count):
            later[f"g{i}"] = replace(gs[f"g{i}"], ends_at=T0 + 30 * HOUR)
        return CloudView(later, ms, [], version=version)

    few = moved(int(n * PATCH_MAX_SHARE), 3)
    few.inherit(full)
    assert few.before is not None and len(few.before.changed) == int(n * PATCH_MAX_SHARE)
    many = moved(int(n * PATCH_MAX_SHARE) + 1, 4)
    many.inherit(full)
    assert many.before is None
    for changed in (few, many):
        got = await plan_shared(changed, scope, lock, T0 + HOUR, lead_time=HOUR, tag=tag)
        assert_same(got, plan(changed, scope, lock, T0 + HOUR, lead_time=HOUR, tag=tag))


async def test_a_version_planned_afresh_after_a_patched_one_takes_its_kept_credentials() -> None:
    """Past the share a version is planned from scratch; the credentials the last (patched)
    version kept are still taken, not tagged again: only the changed grants' are made."""
    tags: list[bytes] = []

    def counting(*parts: bytes) -> bytes:
        tags.append(parts[0])
        return tag(*parts)

    n = 100
    gs = {
        f"g{i}": Grant(f"g{i}", T0 - HOUR, T0 + 9 * HOUR, frozenset({"space-a"}))
        for i in range(n)
    }
    ms = [AccessMethod(f"m{i}", f"g{i}", "code", secret=b"%04d" % (1000 + i)) for i in range(n)]
    lock, scope = caps(2 * n, True), SCOPES[0]
    views = [CloudView(gs, ms, [], version=1)]
    await plan_shared(views[0], scope, lock, T0, lead_time=HOUR, tag=counting)
    for version, count in ((2, 1), (3, 80)):  # patched, then past the share
        gs = {**gs}
        for i in range(count):
            g = gs[f"g{i}"]
            gs[f"g{i}"] = replace(g, ends_at=(g.ends_at or T0) + HOUR)
        views.append(CloudView(gs, ms, [], version=version))
        views[-1].inherit(views[-2])
        tags.clear()
        got = await plan_shared(views[-1], scope, lock, T0, lead_time=HOUR, tag=counting)
        assert sorted(tags) == sorted(f"m{i}".encode() for i in range(count))
        assert_same(got, plan(views[-1], scope, lock, T0, lead_time=HOUR, tag=tag))
    assert views[1].before is not None and views[2].before is None
