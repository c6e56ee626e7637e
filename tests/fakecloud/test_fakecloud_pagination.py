"""Cursor pagination: every object once, in order, even when the list changes between pages."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from fakecloud import FakeCloudServer, WorkspaceState


def _add_grants(state: WorkspaceState, count: int) -> list[str]:
    user = state.add_user_identity(full_name="Many Grants")
    return [
        state.grants.create(
            user_identity_id=user["user_identity_id"],
            requested_access_methods=[{"mode": "code"}],
        )["access_grant_id"]
        for _ in range(count)
    ]


@pytest.fixture
async def many() -> Any:
    state = WorkspaceState(rng=random.Random(11))
    ids = _add_grants(state, 25)
    async with FakeCloudServer(state=state) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            yield server, client, ids


async def _walk(client: httpx.AsyncClient, path: str, key: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"page_cursor": cursor} if cursor else {})}
        body = (await client.get(path, params=query)).json()
        seen.extend(item[f"{key}_id"] for item in body[f"{key}s"])
        if not body["pagination"]["has_next_page"]:
            return seen
        cursor = body["pagination"]["next_page_cursor"]


@pytest.mark.parametrize("limit", [1, 2, 7, 25, 500])
async def test_walk_covers_all_once_in_order(many: Any, limit: int) -> None:
    _, client, ids = many
    assert await _walk(client, "/access_grants/list", "access_grant", limit=limit) == ids


async def test_changes_between_pages_cause_no_duplicates_or_gaps(many: Any) -> None:
    server, client, ids = many
    state: WorkspaceState = server.state
    first = (await client.get("/access_grants/list", params={"limit": 5})).json()
    served = [g["access_grant_id"] for g in first["access_grants"]]
    assert served == ids[:5]
    state.grants.delete(ids[2])  # already served
    state.grants.delete(ids[10])  # not served yet
    added = _add_grants(state, 2)
    cursor = first["pagination"]["next_page_cursor"]
    rest = await _walk(client, "/access_grants/list", "access_grant", limit=5, page_cursor=cursor)
    assert served + rest == ids[:10] + ids[11:] + added


async def test_next_page_url_gives_the_next_page(many: Any) -> None:
    _, client, ids = many
    first = (await client.get("/access_grants/list", params={"limit": 3})).json()
    url = first["pagination"]["next_page_url"]
    assert url.startswith(str(client.base_url).rstrip("/") + "/access_grants/list?")
    second = (await client.get(url)).json()
    assert [g["access_grant_id"] for g in second["access_grants"]] == ids[3:6]


async def test_post_pagination_matches_get(many: Any) -> None:
    _, client, ids = many
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 10}
    while True:
        page = (await client.post("/access_grants/list", json=body)).json()
        seen.extend(g["access_grant_id"] for g in page["access_grants"])
        if not page["pagination"]["has_next_page"]:
            break
        body["page_cursor"] = page["pagination"]["next_page_cursor"]
    assert seen == ids


async def test_cursor_of_another_list_is_refused(many: Any) -> None:
    _, client, _ = many
    first = (await client.get("/access_grants/list", params={"limit": 1})).json()
    cursor = first["pagination"]["next_page_cursor"]
    response = await client.get("/spaces/list", params={"page_cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_input"


async def test_filters_hold_across_pages(cloud: FakeCloudServer, http: httpx.AsyncClient) -> None:
    space_id = cloud.state.spaces.keys()[1]
    seen = await _walk(http, "/access_grants/list", "access_grant", space_id=space_id, limit=1)
    wanted = [g["access_grant_id"] for g in cloud.state.access_grants if space_id in g["space_ids"]]
    assert seen == wanted
    assert len(wanted) == 2


async def test_access_methods_pages_and_can_mimic_the_document(
    cloud: FakeCloudServer, http: httpx.AsyncClient, openapi: Any
) -> None:
    space_id = cloud.state.spaces.keys()[0]
    walked = await _walk(http, "/access_methods/list", "access_method", space_id=space_id, limit=1)
    cloud.control.access_methods_pagination = False
    body = (
        await http.get("/access_methods/list", params={"space_id": space_id, "limit": 1})
    ).json()
    openapi.check_response("/access_methods/list", body, "get")
    assert "pagination" not in body
    assert [m["access_method_id"] for m in body["access_methods"]] == walked
    assert len(walked) == 4  # Jane's code + card, Omar's code + mobile key (via the Lab)
