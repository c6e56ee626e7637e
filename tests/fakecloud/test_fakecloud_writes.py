"""Writes through the Seam routes: create, update and delete grants, as Seam validates them."""

from __future__ import annotations

from typing import Any

import httpx

from fakecloud import FakeCloudServer


async def test_create_with_a_new_user_identity(
    cloud: FakeCloudServer, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    body = {
        "user_identity": {"full_name": "Grace Hopper", "email_address": "grace@example.com"},
        "space_keys": ["workshop-annex"],
        "requested_access_methods": [{"mode": "mobile_key"}],
        "access_grant_key": "grace",
    }
    grant = (await http.post("/access_grants/create", json=body)).json()["access_grant"]
    user = cloud.state.user_identities.get(grant["user_identity_id"])
    assert user is not None
    assert user["email_address"] == "grace@example.com"
    assert grant["space_ids"] == [demo["spaces"][1]["space_id"]]
    assert grant["instant_key_url"].startswith("https://ik.seam.co/")


async def test_failed_create_leaves_nothing_behind(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    users, grants, events = (
        len(cloud.state.user_identities),
        len(cloud.state.access_grants),
        len(cloud.state.events),
    )
    response = await http.post(
        "/access_grants/create",
        json={
            "user_identity": {"full_name": "Nobody"},
            "acs_entrance_ids": ["00000000-0000-4000-8000-000000000000"],
            "requested_access_methods": [{"mode": "code"}],
        },
    )
    assert response.status_code == 404
    assert (
        len(cloud.state.user_identities),
        len(cloud.state.access_grants),
        len(cloud.state.events),
    ) == (users, grants, events)


async def test_create_refuses_bad_windows_and_modes(
    http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    user = demo["user_identities"][0]["user_identity_id"]
    cases: list[dict[str, Any]] = [
        {"ends_at": "2000-01-01T00:00:00Z"},
        {"starts_at": "2998-01-02T00:00:00Z", "ends_at": "2998-01-01T00:00:00Z"},
        {"requested_access_methods": [{"mode": "telepathy"}]},
        {"requested_access_methods": [{"mode": "code", "code": "12ab"}]},
        {"requested_access_methods": None},
    ]
    for case in cases:
        body = {"user_identity_id": user, "requested_access_methods": [{"mode": "code"}], **case}
        response = await http.post("/access_grants/create", json=body)
        assert response.status_code == 400, case
        assert response.json()["error"]["type"] == "invalid_input"


async def test_query_style_create_update_by_key(
    cloud: FakeCloudServer, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    # Seam's document lists POST only for create; parameters may still come as a query.
    assert (await http.get("/access_grants/create")).status_code == 405
    created = await http.post(
        "/access_grants/create",
        params={
            "user_identity_id": demo["user_identities"][2]["user_identity_id"],
            "requested_access_methods": ["code", "card"],
            "access_grant_key": "by-get",
            "_strict": "true",
        },
    )
    grant = created.json()["access_grant"]
    assert [m["mode"] for m in grant["requested_access_methods"]] == ["code", "card"]
    await http.post(
        "/access_grants/update",
        json={"access_grant_key": "by-get", "ends_at": "2999-01-01T00:00:00Z", "name": "Renamed"},
    )
    stored = cloud.state.grants.get(grant["access_grant_id"])
    assert (stored["ends_at"], stored["display_name"]) == ("2999-01-01T00:00:00.000Z", "Renamed")
    assert cloud.state.events.all()[-1]["event_type"] == "access_grant.access_times_changed"


async def test_access_grant_key_null_filters_grants_without_a_key(
    cloud: FakeCloudServer, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    keyless = cloud.state.grants.create(
        user_identity_id=demo["user_identities"][0]["user_identity_id"],
        requested_access_methods=[],
    )
    by_null = await http.post("/access_grants/list", json={"access_grant_key": None})
    by_empty = await http.get("/access_grants/list", params={"access_grant_key": ""})
    for response in (by_null, by_empty):
        ids = [g["access_grant_id"] for g in response.json()["access_grants"]]
        assert ids == [keyless["access_grant_id"]]
