"""The official ``seam`` SDK (3.18.0) reads the fake cloud as it would read Seam."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from seam.exceptions import (
    SeamHttpApiError,
    SeamHttpInvalidInputError,
    SeamHttpUnauthorizedError,
)
from seam.resources.seam_event import AccessGrantCreatedEvent, AccessMethodIssuedEvent
from seam.seam import AsyncSeam

from fakecloud import DEMO_SEED, FakeCloudServer
from fakecloud.clock import ManualClock
from fakecloud.timestamps import to_iso


async def test_lists_grants_over_several_pages(
    cloud: FakeCloudServer, seam: AsyncSeam, grant_ids: list[str]
) -> None:
    paginator = seam.create_paginator(seam.access_grants.list, {"limit": 1})
    grants = await paginator.flatten_to_list()
    assert [g.access_grant_id for g in grants] == grant_ids
    calls = cloud.control.requests_to("/access_grants/list")
    assert len(calls) == len(grant_ids)
    assert all(c.method == "GET" and c.params["_strict"] == "true" for c in calls)
    assert "page_cursor" not in calls[0].params
    assert all("page_cursor" in c.params for c in calls[1:])


async def test_gets_a_grant_by_id_and_by_key(seam: AsyncSeam, demo: dict[str, Any]) -> None:
    spec = demo["access_grants"][1]
    by_id = await seam.access_grants.get(access_grant_id=spec["access_grant_id"])
    by_key = await seam.access_grants.get(access_grant_key=spec["access_grant_key"])
    assert by_id == by_key
    assert by_id.user_identity_id == spec["user_identity_id"]
    assert by_id.name == spec["name"]
    assert by_id.space_ids == []
    assert by_id.instant_key_url == "https://ik.seam.co/DEMOOM"
    assert [m.mode for m in by_id.requested_access_methods] == ["code", "mobile_key"]


async def test_lists_access_methods_of_a_grant(seam: AsyncSeam, demo: dict[str, Any]) -> None:
    spec = demo["access_grants"][0]
    methods = await seam.access_methods.list(access_grant_id=spec["access_grant_id"])
    wanted = [m["access_method_id"] for m in spec["requested_access_methods"]]
    assert [m.access_method_id for m in methods] == wanted
    assert [(m.mode, m.code, m.is_issued) for m in methods] == [
        ("code", "482913", True),
        ("card", None, True),
    ]
    paged = seam.create_paginator(
        seam.access_methods.list, {"access_grant_id": spec["access_grant_id"], "limit": 1}
    )
    assert [m.access_method_id for m in await paged.flatten_to_list()] == wanted


async def test_lists_directory_objects(seam: AsyncSeam, demo: dict[str, Any]) -> None:
    users = await seam.user_identities.list()
    spaces = await seam.spaces.list()
    entrances = await seam.acs.entrances.list()
    devices = await seam.devices.list()
    assert [u.user_identity_id for u in users] == [
        u["user_identity_id"] for u in demo["user_identities"]
    ]
    assert [s.space_id for s in spaces] == [s["space_id"] for s in demo["spaces"]]
    assert [(s.acs_entrance_count, s.device_count) for s in spaces] == [(2, 0), (1, 1)]
    assert [e.acs_entrance_id for e in entrances] == [
        e["acs_entrance_id"] for e in demo["acs_entrances"]
    ]
    assert [d.device_id for d in devices] == [d["device_id"] for d in demo["devices"]]
    main = demo["spaces"][0]["space_id"]
    in_main = await seam.acs.entrances.list(space_id=main)
    assert {e.display_name for e in in_main} == {
        "Main Building Front Door",
        "Main Building Lab",
    }
    assert (await seam.spaces.get(space_key="workshop-annex")).name == "Workshop Annex"


async def test_lists_events_since_a_time(manual_clock: ManualClock) -> None:
    async with FakeCloudServer(seed=DEMO_SEED, now=manual_clock, rng=random.Random(3)) as cloud:
        before = to_iso(manual_clock())
        manual_clock.advance(60)
        user_id = cloud.state.user_identities.keys()[2]
        grant = cloud.state.grants.create(
            user_identity_id=user_id, requested_access_methods=[{"mode": "code"}]
        )
        async with AsyncSeam(api_key=cloud.api_key, endpoint=cloud.url) as seam:
            events = await seam.events.list(since=before)
            everything = await seam.events.list(since="2000-01-01T00:00:00Z")
    assert [e.event_type for e in events] == [
        "access_grant.created",
        "access_method.created",
        "access_method.issued",
    ]
    created, _, issued = events
    assert isinstance(created, AccessGrantCreatedEvent)
    assert created.access_grant_id == grant["access_grant_id"]
    assert isinstance(issued, AccessMethodIssuedEvent)
    assert issued.code == cloud.state.access_methods.values()[-1]["code"]
    assert len(everything) == len(cloud.state.events)


async def test_writes_through_the_sdk(
    cloud: FakeCloudServer, seam: AsyncSeam, demo: dict[str, Any]
) -> None:
    user = await seam.user_identities.create(full_name="Ada Lovelace")
    grant = await seam.access_grants.create(
        user_identity_id=user.user_identity_id,
        space_ids=[demo["spaces"][0]["space_id"]],
        requested_access_methods=[{"mode": "code", "code": "13579"}],
        ends_at="2999-01-01T00:00:00.000Z",
    )
    await seam.access_grants.update(
        access_grant_id=grant.access_grant_id, ends_at="2998-01-01T00:00:00.000Z"
    )
    stored = cloud.state.access_grants.get(grant.access_grant_id)
    assert stored is not None
    assert stored["ends_at"] == "2998-01-01T00:00:00.000Z"
    await seam.access_grants.delete(access_grant_id=grant.access_grant_id)
    assert grant.access_grant_id not in cloud.state.access_grants
    methods = [(c.method, c.path) for c in cloud.control.requests.records]
    assert methods == [
        ("POST", "/user_identities/create"),
        ("POST", "/access_grants/create"),
        ("PATCH", "/access_grants/update"),
        ("DELETE", "/access_grants/delete"),
    ]


async def test_bad_key_raises_unauthorized(cloud: FakeCloudServer) -> None:
    async with AsyncSeam(api_key="seam_wrong_key_123", endpoint=cloud.url) as seam:
        with pytest.raises(SeamHttpUnauthorizedError):
            await seam.access_grants.list()


async def test_errors_reach_the_sdk_typed(seam: AsyncSeam) -> None:
    with pytest.raises(SeamHttpApiError) as not_found:
        await seam.access_grants.get(access_grant_id=str(uuid.UUID(int=5, version=4)))
    assert (not_found.value.status_code, not_found.value.code) == (404, "not_found")
    with pytest.raises(SeamHttpInvalidInputError):
        await seam.access_grants.list(limit=-1)
