"""The workspace state: grants make methods and events, deletes cascade, seeds load."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fakecloud import DEMO_SEED, FakeCloudServer, WorkspaceState, state_from_seed
from fakecloud.clock import ManualClock
from fakecloud.errors import InvalidInput, NotFound
from fakecloud.seed import SeedError, load_seed


@pytest.fixture
def state(manual_clock: ManualClock) -> WorkspaceState:
    return state_from_seed(DEMO_SEED, now=manual_clock, rng=random.Random(5))


def _user(state: WorkspaceState) -> str:
    return state.user_identities.keys()[0]


def test_grant_makes_one_method_per_requested_mode(state: WorkspaceState) -> None:
    entrance = state.acs_entrances.keys()[0]
    grant = state.grants.create(
        user_identity_id=_user(state),
        acs_entrance_ids=[entrance],
        requested_access_methods=[
            {"mode": "code"},
            {"mode": "code", "code": "0042"},
            {"mode": "card"},
            {"mode": "mobile_key"},
        ],
    )
    methods = [state.access_methods.get(m) for m in grant["access_method_ids"]]
    assert [m["mode"] for m in methods if m] == ["code", "code", "card", "mobile_key"]
    code, given, card, mobile = (m for m in methods if m)
    assert re.fullmatch(r"\d{6}", code["code"])
    assert given["code"] == "0042"
    assert re.fullmatch(r"\d+", card["card_number"])
    assert mobile["instant_key_url"].startswith("https://")
    assert grant["instant_key_url"] == mobile["instant_key_url"]
    assert grant["acs_entrance_ids"] == [entrance]
    assert grant["space_ids"] == []
    echoed = [r["created_access_method_ids"] for r in grant["requested_access_methods"]]
    assert echoed == [[m] for m in grant["access_method_ids"]]
    assert all(m["is_issued"] and m["issued_at"] for m in methods if m)


def test_same_rng_seed_gives_same_ids(manual_clock: ManualClock) -> None:
    one = state_from_seed(None, now=manual_clock, rng=random.Random(9))
    two = state_from_seed(None, now=manual_clock, rng=random.Random(9))
    for workspace in (one, two):
        user = workspace.add_user_identity(full_name="A")
        workspace.grants.create(
            user_identity_id=user["user_identity_id"], requested_access_methods=[{"mode": "code"}]
        )
    assert one.access_methods.values() == two.access_methods.values()
    assert one.events.all() == two.events.all()


def test_window_must_be_ordered(state: WorkspaceState, manual_clock: ManualClock) -> None:
    with pytest.raises(InvalidInput, match="ends_at"):
        state.grants.create(
            user_identity_id=_user(state),
            requested_access_methods=[],
            starts_at=manual_clock(),
            ends_at=manual_clock() - timedelta(seconds=1),
        )
    with pytest.raises(NotFound):
        state.grants.create(user_identity_id="nobody", requested_access_methods=[])
    with pytest.raises(InvalidInput, match="code"):
        state.grants.create(
            user_identity_id=_user(state), requested_access_methods=[{"mode": "code", "code": "12"}]
        )


def test_update_logs_times_changed(state: WorkspaceState, manual_clock: ManualClock) -> None:
    grant_id = state.access_grants.keys()[0]
    manual_clock.advance(10)
    state.grants.update(grant_id, ends_at=None)
    event = state.events.all()[-1]
    assert event["event_type"] == "access_grant.access_times_changed"
    assert event["access_grant_id"] == grant_id
    assert "ends_at" not in event  # the event schema has no null ends_at
    assert state.access_grants[grant_id]["ends_at"] is None
    with pytest.raises(InvalidInput):
        state.grants.update(
            grant_id, starts_at=manual_clock() + timedelta(days=1), ends_at=manual_clock()
        )


def test_delete_cascades_to_methods(state: WorkspaceState) -> None:
    grant_id = state.access_grants.keys()[0]
    method_ids = list(state.access_grants[grant_id]["access_method_ids"])
    logged = len(state.events)
    state.grants.delete(grant_id)
    assert grant_id not in state.access_grants
    assert not any(m in state.access_methods for m in method_ids)
    tail = state.events.all()[logged:]
    assert [(e["event_type"], e.get("access_method_id")) for e in tail] == [
        *(("access_method.deleted", m) for m in method_ids),
        ("access_grant.deleted", None),
    ]
    assert all(e.get("access_grant_keys") == ["jane-main"] for e in tail[:-1])


def test_method_changes(state: WorkspaceState) -> None:
    grant_id = state.access_grants.keys()[1]  # Omar: code + mobile key
    code_id, mobile_id = state.access_grants[grant_id]["access_method_ids"]
    state.methods.update(code_id, code="99887766")
    assert state.events.all()[-1]["event_type"] == "access_method.reissued"
    assert state.events.all()[-1]["code"] == "99887766"
    state.methods.revoke(mobile_id)
    grant = state.access_grants.get(grant_id)
    assert grant is not None
    assert grant["access_method_ids"] == [code_id]
    assert "instant_key_url" not in grant
    assert grant["requested_access_methods"][1]["created_access_method_ids"] == []
    assert state.events.all()[-1]["event_type"] == "access_method.revoked"
    state.methods.delete(code_id)
    assert state.events.all()[-1]["event_type"] == "access_method.deleted"
    assert grant["access_method_ids"] == []


def test_unissued_methods_issue_later(state: WorkspaceState) -> None:
    grant = state.grants.create(
        user_identity_id=_user(state), requested_access_methods=[{"mode": "card"}], issue=False
    )
    method = state.access_methods.get(grant["access_method_ids"][0])
    assert method is not None
    assert (method["is_issued"], method["issued_at"]) == (False, None)
    state.methods.issue(method["access_method_id"])
    assert method["is_issued"] is True
    assert state.events.all()[-1]["event_type"] == "access_method.issued"


async def test_extra_and_raw_objects_are_served_as_given(cloud: FakeCloudServer) -> None:
    state = cloud.state
    grant = state.grants.create(
        user_identity_id=_user(state),
        requested_access_methods=[{"mode": "code", "extra": {"future_field": [1]}}],
        extra={"x_unknown": {"nested": True}},
    )
    key = state.inject_raw("access_grants", {"display_name": "no id, no anything"})
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    async with httpx.AsyncClient(base_url=cloud.url, headers=headers) as client:
        got = await client.get(
            "/access_grants/get", params={"access_grant_id": grant["access_grant_id"]}
        )
        method = await client.get(
            "/access_methods/get", params={"access_method_id": grant["access_method_ids"][0]}
        )
        listed = await client.get("/access_grants/list", params={"user_identity_id": _user(state)})
        every = await client.get("/access_grants/list")
    assert got.json()["access_grant"]["x_unknown"] == {"nested": True}
    assert method.json()["access_method"]["future_field"] == [1]
    assert {"display_name": "no id, no anything"} not in listed.json()["access_grants"]
    assert every.json()["access_grants"][-1] == {"display_name": "no id, no anything"}
    with pytest.raises(InvalidInput):
        state.grants.delete(key)


def test_space_filter_reaches_grants_through_entrances(state: WorkspaceState) -> None:
    from fakecloud.queries import GrantFilter, grant_entries, method_entries

    main = state.spaces.keys()[0]
    omar = state.access_grants.keys()[1]
    grants = [g["access_grant_id"] for _, g in grant_entries(state, GrantFilter(space_id=main))]
    assert omar in grants
    methods = [m["access_method_id"] for _, m in method_entries(state, GrantFilter(space_id=main))]
    assert set(state.access_grants[omar]["access_method_ids"]) <= set(methods)


def test_seed_offsets_follow_the_clock(manual_clock: ManualClock) -> None:
    state = state_from_seed(DEMO_SEED, now=manual_clock)
    expired = state.grants.get(access_grant_key="jane-workshop-expired")
    assert expired["ends_at"] == "2025-06-15T16:54:17.000Z"
    assert state.access_methods[expired["access_method_ids"][0]]["code"] == "1906"


@pytest.mark.parametrize(
    ("seed", "fault"),
    [
        ({"spaces": [{"nmae": "typo"}]}, "spaces\\[0\\]: unknown keys"),
        ({"rooms": []}, "unknown seed sections"),
        ({"access_grants": [{"user_identity_id": "ghost"}]}, "access_grants\\[0\\]"),
        (
            {
                "user_identities": [{"user_identity_id": "u1"}],
                "access_grants": [{"user_identity_id": "u1", "ends_at": "x", "ends_in_s": 1}],
            },
            "not both",
        ),
    ],
)
def test_bad_seeds_are_refused(seed: dict[str, Any], fault: str) -> None:
    with pytest.raises(SeedError, match=fault):
        load_seed(WorkspaceState(), seed)
