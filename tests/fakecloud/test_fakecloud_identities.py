"""``/user_identities/delete`` with Seam's semantics: the identity goes with what hangs off it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from seam.exceptions import SeamHttpApiError
from seam.seam import AsyncSeam

from fakecloud import FakeCloudServer


def _jane(cloud: FakeCloudServer, demo: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """A user identity with an ACS user and two grants (three access methods)."""
    state = cloud.state
    user = state.add_user_identity(full_name="Jane", extra={"acs_user_ids": [str(uuid.uuid4())]})
    uid = user["user_identity_id"]
    space = demo["spaces"][0]["space_id"]
    grants = [
        state.grants.create(user_identity_id=uid, space_ids=[space], requested_access_methods=modes)
        for modes in ([{"mode": "code"}, {"mode": "card"}], [{"mode": "code"}])
    ]
    methods = [m for g in grants for m in g["access_method_ids"]]
    return uid, [g["access_grant_id"] for g in grants], methods


async def test_sdk_delete_takes_the_identity_with_its_grants_and_logs_seams_events(
    cloud: FakeCloudServer, seam: AsyncSeam, demo: dict[str, Any], openapi: Any
) -> None:
    uid, grant_ids, method_ids = _jane(cloud, demo)
    others = len(cloud.state.access_grants) - len(grant_ids)
    logged = len(cloud.state.events)

    await seam.user_identities.delete(user_identity_id=uid)

    state = cloud.state
    assert uid not in state.user_identities
    assert not any(g in state.access_grants for g in grant_ids)
    assert not any(m in state.access_methods for m in method_ids)
    assert len(state.access_grants) == others
    news = state.events.all()[logged:]
    assert sorted(e["event_type"] for e in news) == sorted(
        ["access_method.deleted"] * 3 + ["access_grant.deleted"] * 2 + ["acs_user.deleted"]
    )
    assert {e.get("access_grant_id") for e in news} >= set(grant_ids)
    for event in news:
        openapi.check_component("event", event)
    # The SDK sent Seam's verb for it: DELETE with a query string.
    assert [r.method for r in cloud.control.requests_to("/user_identities/delete")] == ["DELETE"]

    with pytest.raises(SeamHttpApiError) as gone:
        await seam.user_identities.delete(user_identity_id=uid)
    assert gone.value.status_code == 404


async def test_deletion_under_way_shows_being_deleted_everywhere(
    cloud: FakeCloudServer, http: httpx.AsyncClient, demo: dict[str, Any], openapi: Any
) -> None:
    uid, grant_ids, method_ids = _jane(cloud, demo)
    token = {"Authorization": f"Bearer {cloud.control_token}"}
    async with httpx.AsyncClient(base_url=cloud.control_url, headers=token) as control:
        begun = await control.post(
            "/user_identities/delete", json={"user_identity_id": uid, "finish": False}
        )
        assert begun.status_code == 200, begun.text

        user = (await http.post("/user_identities/get", json={"user_identity_id": uid})).json()
        openapi.check_response("/user_identities/get", user)
        assert [w["warning_code"] for w in user["user_identity"]["warnings"]] == ["being_deleted"]
        listed = await http.post("/access_grants/list", json={"user_identity_id": uid})
        openapi.check_response("/access_grants/list", listed.json())
        for grant in listed.json()["access_grants"]:
            assert [w["warning_code"] for w in grant["warnings"]] == ["being_deleted"]
        for mid in method_ids:
            method = (await http.post("/access_methods/get", json={"access_method_id": mid})).json()
            openapi.check_response("/access_methods/get", method)
            assert method["access_method"]["warnings"][0]["warning_code"] == "being_deleted"

        done = await control.post("/user_identities/delete", json={"user_identity_id": uid})
        assert done.status_code == 200
    assert uid not in cloud.state.user_identities
    assert not any(g in cloud.state.access_grants for g in grant_ids)
