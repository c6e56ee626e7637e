"""Every list/get answer of the fake cloud validates against Seam's published response schemas."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from fakecloud import FakeCloudServer

UNKNOWN = str(uuid.UUID(int=1, version=4))
SINCE_EVER = "2000-01-01T00:00:00.000Z"

PAGINATED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/access_grants/list", {}),
    ("/access_methods/list", {"space_id": "<space0>"}),
    ("/user_identities/list", {}),
    ("/spaces/list", {}),
    ("/acs/entrances/list", {}),
    ("/devices/list", {}),
)


def _ids(demo: dict[str, Any]) -> dict[str, str]:
    grants = demo["access_grants"]
    return {
        "<grant0>": grants[0]["access_grant_id"],
        "<grant1>": grants[1]["access_grant_id"],
        "<method0>": grants[0]["requested_access_methods"][0]["access_method_id"],
        "<space0>": demo["spaces"][0]["space_id"],
        "<space1>": demo["spaces"][1]["space_id"],
        "<lab>": demo["acs_entrances"][1]["acs_entrance_id"],
        "<user0>": demo["user_identities"][0]["user_identity_id"],
        "<device0>": demo["devices"][0]["device_id"],
    }


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return ids.get(value, value) if isinstance(value, str) else value


CASES: list[tuple[str, dict[str, Any]]] = [
    ("/access_grants/list", {}),
    ("/access_grants/list", {"access_grant_ids": ["<grant0>", "<grant1>"]}),
    ("/access_grants/list", {"space_id": "<space0>"}),
    ("/access_grants/list", {"acs_entrance_id": "<lab>"}),
    ("/access_grants/list", {"user_identity_id": "<user0>"}),
    ("/access_grants/list", {"user_identity_id": UNKNOWN}),
    ("/access_grants/get", {"access_grant_id": "<grant0>"}),
    ("/access_grants/get", {"access_grant_key": "omar-lab"}),
    ("/access_methods/list", {"access_grant_id": "<grant1>"}),
    ("/access_methods/list", {"space_id": "<space0>"}),
    ("/access_methods/list", {"acs_entrance_id": "<lab>"}),
    ("/access_methods/list", {"device_id": "<device0>"}),
    ("/access_methods/list", {"space_id": UNKNOWN}),
    ("/access_methods/get", {"access_method_id": "<method0>"}),
    ("/user_identities/list", {}),
    ("/user_identities/list", {"user_identity_ids": [UNKNOWN]}),
    ("/user_identities/get", {"user_identity_id": "<user0>"}),
    ("/user_identities/get", {"user_identity_key": "li"}),
    ("/spaces/list", {}),
    ("/spaces/list", {"space_key": "nope"}),
    ("/spaces/get", {"space_id": "<space1>"}),
    ("/spaces/get", {"space_key": "main-building"}),
    ("/acs/entrances/list", {}),
    ("/acs/entrances/list", {"space_id": "<space0>"}),
    ("/acs/entrances/list", {"space_id": UNKNOWN}),
    ("/acs/entrances/get", {"acs_entrance_id": "<lab>"}),
    ("/devices/list", {}),
    ("/devices/list", {"device_ids": [UNKNOWN]}),
    ("/events/list", {"since": SINCE_EVER}),
    ("/events/list", {"since": SINCE_EVER, "event_types": ["access_method.issued"]}),
    ("/events/list", {"between": [SINCE_EVER, "2999-01-01T00:00:00.000Z"]}),
    ("/events/list", {"since": "2999-01-01T00:00:00.000Z"}),
]


@pytest.fixture
def varied(cloud: FakeCloudServer, demo: dict[str, Any]) -> FakeCloudServer:
    """The demo plus nulls and every event type the fake cloud logs."""
    state = cloud.state
    state.add_device(display_name="Spare lock")
    user = state.add_user_identity(user_identity_key="no-contact")
    open_ended = state.grants.create(
        user_identity_id=user["user_identity_id"],
        requested_access_methods=[{"mode": "code"}, {"mode": "card"}, {"mode": "mobile_key"}],
        space_ids=[demo["spaces"][1]["space_id"]],
        issue=False,
    )
    methods = open_ended["access_method_ids"]
    state.methods.issue(methods[0])
    state.methods.update(methods[0], code="5550123")
    state.methods.revoke(methods[1])
    state.grants.update(open_ended["access_grant_id"], name="renamed", ends_at=None)
    state.grants.delete(demo["access_grants"][3]["access_grant_id"])
    return cloud


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("path", "params"), CASES)
async def test_answers_validate_against_schema(
    varied: FakeCloudServer,
    http: httpx.AsyncClient,
    openapi: Any,
    demo: dict[str, Any],
    method: str,
    path: str,
    params: dict[str, Any],
) -> None:
    filled = {k: _fill(v, _ids(demo)) for k, v in params.items()}
    if method == "GET":
        response = await http.get(path, params={**filled, "_strict": "true"})
    else:
        response = await http.post(path, json=filled)
    assert response.status_code == 200, response.text
    openapi.check_response(path, response.json(), method)


async def test_get_and_post_answer_alike(
    varied: FakeCloudServer, http: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    ids = _ids(demo)
    for path, params in CASES:
        filled = {k: _fill(v, ids) for k, v in params.items()}
        by_get = (await http.get(path, params=filled)).json()
        by_post = (await http.post(path, json=filled)).json()
        assert by_get == by_post, path


async def test_events_cover_every_logged_type(
    varied: FakeCloudServer, http: httpx.AsyncClient, openapi: Any
) -> None:
    body = (await http.get("/events/list", params={"since": SINCE_EVER})).json()
    openapi.check_response("/events/list", body)
    assert {e["event_type"] for e in body["events"]} == {
        "access_grant.created",
        "access_grant.access_times_changed",
        "access_grant.deleted",
        "access_method.created",
        "access_method.issued",
        "access_method.reissued",
        "access_method.revoked",
        "access_method.deleted",
    }


@pytest.mark.parametrize(("path", "params"), PAGINATED)
async def test_every_page_validates(
    varied: FakeCloudServer,
    http: httpx.AsyncClient,
    openapi: Any,
    demo: dict[str, Any],
    path: str,
    params: dict[str, Any],
) -> None:
    query: dict[str, Any] = {k: _fill(v, _ids(demo)) for k, v in params.items()}
    query["limit"] = 1
    pages = 0
    while True:
        body = (await http.get(path, params=query)).json()
        openapi.check_response(path, body, "get")
        openapi.check_component("pagination", body["pagination"])
        pages += 1
        if not body["pagination"]["has_next_page"]:
            assert body["pagination"]["next_page_cursor"] is None
            assert body["pagination"]["next_page_url"] is None
            break
        query["page_cursor"] = body["pagination"]["next_page_cursor"]
    assert pages >= 2


async def test_create_update_delete_answers_validate(
    cloud: FakeCloudServer, http: httpx.AsyncClient, openapi: Any, demo: dict[str, Any]
) -> None:
    user = await http.post("/user_identities/create", json={"full_name": "Ada Lovelace"})
    openapi.check_response("/user_identities/create", user.json())
    created = await http.post(
        "/access_grants/create",
        json={
            "user_identity_id": user.json()["user_identity"]["user_identity_id"],
            "acs_entrance_ids": [demo["acs_entrances"][0]["acs_entrance_id"]],
            "requested_access_methods": [{"mode": "code", "code": "246810"}, {"mode": "card"}],
            "ends_at": "2999-01-01T00:00:00.000Z",
        },
    )
    openapi.check_response("/access_grants/create", created.json())
    grant_id = created.json()["access_grant"]["access_grant_id"]
    updated = await http.patch(
        "/access_grants/update", json={"access_grant_id": grant_id, "ends_at": None}
    )
    openapi.check_response("/access_grants/update", updated.json())
    deleted = await http.delete("/access_grants/delete", params={"access_grant_id": grant_id})
    openapi.check_response("/access_grants/delete", deleted.json())


ERROR_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("/access_grants/get", {}, 400, "invalid_input"),
    ("/access_grants/get", {"access_grant_id": UNKNOWN}, 404, "not_found"),
    ("/access_grants/list", {"limit": 0}, 400, "invalid_input"),
    ("/access_grants/list", {"page_cursor": "not-a-cursor"}, 400, "invalid_input"),
    ("/access_methods/list", {}, 400, "invalid_input"),
    ("/access_methods/get", {"access_method_id": UNKNOWN}, 404, "not_found"),
    ("/user_identities/get", {"user_identity_key": "nobody"}, 404, "not_found"),
    ("/spaces/get", {}, 400, "invalid_input"),
    ("/acs/entrances/get", {"acs_entrance_id": UNKNOWN}, 404, "not_found"),
    ("/events/list", {}, 400, "invalid_input"),
    ("/events/list", {"since": "last tuesday"}, 400, "invalid_input"),
]


@pytest.mark.parametrize(("path", "params", "status", "kind"), ERROR_CASES)
async def test_error_bodies_are_seam_shaped(
    cloud: FakeCloudServer,
    http: httpx.AsyncClient,
    openapi: Any,
    path: str,
    params: dict[str, Any],
    status: int,
    kind: str,
) -> None:
    response = await http.get(path, params=params)
    assert response.status_code == status
    openapi.check_error(response.json())
    assert response.json()["error"]["type"] == kind
    if status != 404:  # the document declares 400 and 401, not 404
        assert str(status) in openapi.document["paths"][path]["get"]["responses"]


async def test_unauthorized_body(cloud: FakeCloudServer, openapi: Any) -> None:
    async with httpx.AsyncClient(base_url=cloud.url) as client:
        response = await client.get("/spaces/list", headers={"Authorization": "Bearer seam_x"})
    assert response.status_code == 401
    openapi.check_error(response.json())
    assert response.json()["error"]["type"] == "unauthorized"


async def test_validation_catches_a_broken_grant(
    cloud: FakeCloudServer, http: httpx.AsyncClient, openapi: Any
) -> None:
    cloud.state.inject_raw("access_grants", {"access_grant_id": UNKNOWN, "name": 3})
    body = (await http.get("/access_grants/list")).json()
    with pytest.raises(AssertionError, match="breaks the schema"):
        openapi.check_response("/access_grants/list", body, "get")
