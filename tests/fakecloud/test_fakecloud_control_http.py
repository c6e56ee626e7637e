"""The ``/_control/`` plane over HTTP: its own token, and every knob a demo process needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fakecloud import FakeCloudServer


@pytest.fixture
async def ctl(cloud: FakeCloudServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {cloud.control_token}"}
    async with httpx.AsyncClient(base_url=cloud.control_url, headers=headers) as client:
        yield client


async def _ok(ctl: httpx.AsyncClient, route: str, /, **body: Any) -> dict[str, Any]:
    response = await ctl.post(route, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize("token", [None, "wrong", "api-key"])
async def test_control_needs_its_own_token(cloud: FakeCloudServer, token: str | None) -> None:
    headers = {}
    if token is not None:
        key = cloud.api_key if token == "api-key" else token
        headers["Authorization"] = f"Bearer {key}"
    async with httpx.AsyncClient(base_url=cloud.control_url, headers=headers) as client:
        response = await client.post("/outage", json={"mode": "refuse"})
    assert response.status_code == 401
    assert cloud.control.outages.current is None


async def test_control_token_is_no_api_key(cloud: FakeCloudServer) -> None:
    headers = {"Authorization": f"Bearer {cloud.control_token}"}
    async with httpx.AsyncClient(base_url=cloud.url, headers=headers) as client:
        assert (await client.get("/spaces/list")).status_code == 401


async def test_outages_over_http(
    cloud: FakeCloudServer, ctl: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    await _ok(ctl, "/outage", mode="http_429", retry_after_s=3)
    assert (await http.get("/spaces/list")).headers["Retry-After"] == "3"
    snapshot = await ctl.get("/snapshot")  # the control plane is never in an outage
    assert snapshot.status_code == 200
    await _ok(ctl, "/outage/clear")
    await _ok(ctl, "/fail_next", count=1, mode="refuse", path="/spaces/list")
    assert [(await http.get("/spaces/list")).status_code for _ in range(2)] == [503, 200]
    bad = await ctl.post("/outage", json={"mode": "volcano"})
    assert bad.status_code == 400


async def test_request_log_over_http(ctl: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    await http.get("/spaces/list")
    await http.get("/devices/list")
    log = (await ctl.get("/requests", params={"path": "/spaces/list"})).json()
    assert log["count"] == 1
    assert log["requests"][0]["status"] == 200
    await _ok(ctl, "/requests/clear")
    assert (await ctl.get("/requests")).json()["count"] == 0


async def test_grants_and_methods_over_http(
    cloud: FakeCloudServer, ctl: httpx.AsyncClient, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    created = await _ok(
        ctl,
        "/access_grants/create",
        user_identity_id=demo["user_identities"][2]["user_identity_id"],
        space_ids=[demo["spaces"][0]["space_id"]],
        ends_in_s=3600,
        requested_access_methods=[
            {"mode": "code", "code": "9876"},
            {"mode": "card", "card_number": "12345678"},
        ],
    )
    grant = created["access_grant"]
    code_id, card_id = grant["access_method_ids"]
    assert (
        cloud.state.access_methods.get(card_id)
        == (await http.get("/access_methods/get", params={"access_method_id": card_id})).json()[
            "access_method"
        ]
    )
    assert cloud.state.access_methods[card_id]["card_number"] == "12345678"

    await _ok(ctl, "/access_methods/update", access_method_id=code_id, code="11223344")
    got = await http.get("/access_methods/get", params={"access_method_id": code_id})
    assert got.json()["access_method"]["code"] == "11223344"
    await _ok(ctl, "/access_methods/revoke", access_method_id=card_id)
    listed = await http.get(
        "/access_methods/list", params={"access_grant_id": grant["access_grant_id"]}
    )
    assert [m["access_method_id"] for m in listed.json()["access_methods"]] == [code_id]

    await _ok(ctl, "/access_grants/update", access_grant_id=grant["access_grant_id"], ends_at=None)
    await _ok(ctl, "/access_grants/delete", access_grant_id=grant["access_grant_id"])
    gone = await http.get(
        "/access_grants/get", params={"access_grant_id": grant["access_grant_id"]}
    )
    assert gone.status_code == 404
    events = (await ctl.get("/snapshot")).json()["events"]
    assert [e["event_type"] for e in events[-10:]] == [
        "access_grant.created",
        "access_method.created",
        "access_method.issued",
        "access_method.created",
        "access_method.issued",
        "access_method.reissued",
        "access_method.revoked",
        "access_grant.access_times_changed",
        "access_method.deleted",
        "access_grant.deleted",
    ]


async def test_inject_broken_objects_over_http(
    ctl: httpx.AsyncClient, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    grant_id = demo["access_grants"][0]["access_grant_id"]
    broken_grant = {
        "access_grant_id": "broken-1",
        "starts_at": "2025-01-02T00:00:00Z",
        "ends_at": "2025-01-01T00:00:00Z",
    }
    await _ok(ctl, "/inject", collection="access_grants", object=broken_grant)
    await _ok(
        ctl,
        "/inject",
        collection="access_methods",
        object={"mode": "laser"},
        access_grant_id=grant_id,
    )
    grants = (await http.get("/access_grants/list")).json()["access_grants"]
    assert grants[-1] == broken_grant
    methods = (await http.get("/access_methods/list", params={"access_grant_id": grant_id})).json()
    assert methods["access_methods"][-1] == {"mode": "laser"}
    refused = await ctl.post("/access_grants/delete", json={"access_grant_id": "broken-1"})
    assert refused.status_code == 400


async def test_clock_skew_and_pagination_knobs(
    cloud: FakeCloudServer, ctl: httpx.AsyncClient
) -> None:
    await _ok(ctl, "/clock_skew", seconds=120)
    assert cloud.control.clock_skew.total_seconds() == 120
    await _ok(ctl, "/access_methods_pagination", enabled=False)
    assert cloud.control.access_methods_pagination is False


async def test_directory_objects_over_http(ctl: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    space = (await _ok(ctl, "/spaces/create", name="Garage"))["space"]
    await _ok(
        ctl, "/acs_entrances/create", display_name="Garage Door", space_ids=[space["space_id"]]
    )
    entrances = await http.get("/acs/entrances/list", params={"space_id": space["space_id"]})
    assert [e["display_name"] for e in entrances.json()["acs_entrances"]] == ["Garage Door"]
    typo = await ctl.post("/spaces/create", json={"nmae": "Garage"})
    assert typo.status_code == 400
