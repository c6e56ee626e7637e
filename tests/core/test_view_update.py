"""A view made from the last one (gateway.view_update) is the view built from scratch from the
same records: random sites, random changes (see test_planner_patch), compared index by index;
and the plans patched from it are the plans made from scratch."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.models import AccessMethod, Entrance, Grant
from gateway.planner import CloudView
from gateway.view_update import update_steps
from tests.core.test_planner_patch import (
    HOUR,
    T0,
    PatchCase,
    Site,
    assert_patched_as_fresh,
    changes,
    patch_cases,
    plan_every_scope,
    sites,
)

ENTRANCES = [Entrance("e1", frozenset({"space-a"}))]


def records(site: Site, order: int = 0) -> tuple[dict[str, Grant], list[AccessMethod]]:
    """The site's grants, with some given entrances and devices, and its methods (in
    another order if ``order``)."""
    gs, ms = site
    grants = {
        gid: replace(g, entrance_ids=frozenset({"e1"}), device_ids=frozenset({"d1"}))
        if gid.endswith("1")
        else g
        for gid, g in gs.items()
    }
    methods = [m for gid in gs for m in ms[gid]]
    if order:
        random.Random(order).shuffle(methods)
    return grants, methods


def updated(old: CloudView, grants: dict[str, Grant], methods: list[AccessMethod]) -> CloudView:
    """The view made from ``old`` however much changed, or built from scratch where
    :func:`update_steps` declines (an empty last view, methods listed in another order)."""
    made: list[CloudView] = []
    for _ in update_steps(made, old, grants, methods, ENTRANCES, 2, max_share=1.0):
        pass
    return made[0] if made else CloudView(grants, methods, ENTRANCES, 2)


def assert_same_view(got: CloudView, fresh: CloudView) -> None:
    assert got.version == fresh.version
    assert got.grants == fresh.grants
    assert got.method_by_id == fresh.method_by_id
    assert got.by_grant == fresh.by_grant
    assert got.grant_of == fresh.grant_of
    assert got.by_secret == fresh.by_secret
    for key, found in got.by_secret.items():  # the same objects, in the same order
        assert [id(m) for m in found] == [id(m) for m in fresh.by_secret[key]]
    assert got.plain == fresh.plain
    for kind, entries in got.plain.items():
        assert [id(e.method) for e in entries.values()] == [
            id(fresh.plain[kind][s].method) for s in entries
        ]
        for e in entries.values():  # one object for each distinct set of spaces
            assert e.space_ids is got.space_sets[e.space_ids]
    assert got.user_of == fresh.user_of
    assert got.entrance_spaces == fresh.entrance_spaces
    assert got.grants_by_space == fresh.grants_by_space
    assert got.grants_by_entrance == fresh.grants_by_entrance
    assert got.grants_by_device == fresh.grants_by_device
    assert not got.plans and not got.credentials


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), order=st.sampled_from([0, 0, 0, 1, 2]))
def test_a_view_made_from_the_last_one_is_the_view_built_from_scratch(
    data: st.DataObject, order: int
) -> None:
    before = data.draw(sites())
    after = data.draw(changes(before))
    old_grants, old_methods = records(before)
    old = CloudView(old_grants, old_methods, ENTRANCES, 1)
    new_grants, new_methods = records(after, order)
    for gid, g in new_grants.items():  # the unchanged records given entrances: the same objects
        if gid.endswith("1") and old_grants.get(gid) == g:
            new_grants[gid] = old_grants[gid]
    fresh = CloudView(new_grants, new_methods, ENTRANCES, 2)
    assert_same_view(updated(old, new_grants, new_methods), fresh)


def test_an_unchanged_site_is_made_from_the_last_view_and_a_method_listed_twice_is_not() -> None:
    g = Grant("g1", T0, T0 + HOUR, frozenset({"space-a"}), frozenset())
    m = AccessMethod("m1", "g1", "code", secret=b"1111")
    old = CloudView({"g1": g}, [m], [], 1)
    made: list[CloudView] = []
    for _ in update_steps(made, old, {"g1": g}, [m], [], 2):
        pass
    assert len(made) == 1 and made[0].by_secret == old.by_secret and made[0].version == 2
    assert made[0].plain == old.plain
    made.clear()
    for _ in update_steps(made, old, {"g1": g}, [m, m], [], 2):
        pass
    assert not made  # built afresh: its lists hold the method twice
    twice = CloudView({"g1": g}, [m, m], [], 1)
    for _ in update_steps(made, twice, {"g1": g}, [m], [], 2):
        pass
    assert not made  # nor from a view whose lists hold one twice


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=patch_cases())
def test_plans_patched_on_a_view_made_from_the_last_one_are_the_plans_made_from_scratch(
    case: PatchCase,
) -> None:
    before, after, later, lock = case

    async def both() -> None:
        old = CloudView(*records(before), ENTRANCES, 1)
        await plan_every_scope(old, lock)
        grants, methods = records(after)
        new = updated(old, grants, methods)
        new.inherit(old)
        assert new.changed_since is None  # taken by inherit: the old view is not kept
        await assert_patched_as_fresh(new, lock, later)

    asyncio.run(both())
