"""Every route the fake cloud serves, checked against Seam's published document and its SDK.

For each public route: Seam's OpenAPI document has the path with exactly the HTTP methods the
fake cloud accepts; the official ``seam`` SDK calls it (with its own verb) and parses the
answer into its resource classes; and the answer, read with plain HTTP, validates against the
document's response schema. A route added without all three checks fails
``test_every_route_is_checked``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from seam.seam import AsyncSeam

from fakecloud import FakeCloudServer
from fakecloud.app import build_app

SdkCall = Callable[[AsyncSeam, dict[str, Any]], Awaitable[object]]
SINCE_EVER = "2000-01-01T00:00:00.000Z"


def _ids(demo: dict[str, Any]) -> dict[str, Any]:
    grant = demo["access_grants"][0]
    return {
        "grant": grant["access_grant_id"],
        "method": grant["requested_access_methods"][0]["access_method_id"],
        "user": demo["user_identities"][0]["user_identity_id"],
        "space": demo["spaces"][0]["space_id"],
        "entrance": demo["acs_entrances"][0]["acs_entrance_id"],
    }


# path -> (the SDK call, the plain-HTTP parameters for the schema check)
SDK_CALLS: dict[str, tuple[SdkCall, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "/access_grants/list": (lambda s, i: s.access_grants.list(), lambda i: {}),
    "/access_grants/get": (
        lambda s, i: s.access_grants.get(access_grant_id=i["grant"]),
        lambda i: {"access_grant_id": i["grant"]},
    ),
    "/access_grants/create": (
        lambda s, i: s.access_grants.create(
            user_identity_id=i["user"],
            space_ids=[i["space"]],
            requested_access_methods=[{"mode": "code"}],
        ),
        lambda i: {
            "user_identity_id": i["user"],
            "space_ids": [i["space"]],
            "requested_access_methods": [{"mode": "card"}],
        },
    ),
    "/access_grants/update": (
        lambda s, i: s.access_grants.update(access_grant_id=i["grant"], name="by the SDK"),
        lambda i: {"access_grant_id": i["grant"], "name": "by plain HTTP"},
    ),
    "/access_grants/delete": (
        lambda s, i: s.access_grants.delete(access_grant_id=i["spare_grant"]),
        lambda i: {"access_grant_id": i["other_grant"]},
    ),
    "/access_methods/list": (
        lambda s, i: s.access_methods.list(access_grant_id=i["grant"]),
        lambda i: {"access_grant_id": i["grant"]},
    ),
    "/access_methods/get": (
        lambda s, i: s.access_methods.get(access_method_id=i["method"]),
        lambda i: {"access_method_id": i["method"]},
    ),
    "/user_identities/list": (lambda s, i: s.user_identities.list(), lambda i: {}),
    "/user_identities/get": (
        lambda s, i: s.user_identities.get(user_identity_id=i["user"]),
        lambda i: {"user_identity_id": i["user"]},
    ),
    "/user_identities/create": (
        lambda s, i: s.user_identities.create(full_name="Grace Hopper"),
        lambda i: {"full_name": "Alan Turing"},
    ),
    "/user_identities/delete": (
        lambda s, i: s.user_identities.delete(user_identity_id=i["spare_user"]),
        lambda i: {"user_identity_id": i["other_user"]},
    ),
    "/spaces/list": (lambda s, i: s.spaces.list(), lambda i: {}),
    "/spaces/get": (
        lambda s, i: s.spaces.get(space_id=i["space"]),
        lambda i: {"space_id": i["space"]},
    ),
    "/acs/entrances/list": (lambda s, i: s.acs.entrances.list(), lambda i: {}),
    "/acs/entrances/get": (
        lambda s, i: s.acs.entrances.get(acs_entrance_id=i["entrance"]),
        lambda i: {"acs_entrance_id": i["entrance"]},
    ),
    "/devices/list": (lambda s, i: s.devices.list(), lambda i: {}),
    "/events/list": (
        lambda s, i: s.events.list(since=SINCE_EVER),
        lambda i: {"since": SINCE_EVER},
    ),
}


def _served(cloud: FakeCloudServer) -> dict[str, set[str]]:
    app = build_app(cloud.control, api_key=cloud.api_key)  # the public routes only
    served: dict[str, set[str]] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/_control") and route.method != "HEAD":
            served.setdefault(path, set()).add(route.method)
    return served


async def test_every_route_is_checked(cloud: FakeCloudServer, openapi: Any) -> None:
    served = _served(cloud)
    assert set(served) == set(SDK_CALLS)
    for path, methods in served.items():
        documented = {m.upper() for m in openapi.document["paths"][path]}
        assert methods == documented, f"{path}: served {methods}, documented {documented}"


@pytest.fixture
def spare(cloud: FakeCloudServer, demo: dict[str, Any]) -> dict[str, Any]:
    """The demo's ids, plus objects the delete routes may remove."""
    state = cloud.state
    ids = _ids(demo)
    for name in ("spare", "other"):
        user = state.add_user_identity(full_name=f"{name} user")
        grant = state.grants.create(
            user_identity_id=ids["user"],
            space_ids=[ids["space"]],
            requested_access_methods=[{"mode": "code"}],
        )
        ids[f"{name}_user"] = user["user_identity_id"]
        ids[f"{name}_grant"] = grant["access_grant_id"]
    return ids


@pytest.mark.parametrize("path", sorted(SDK_CALLS))
async def test_route_through_the_sdk_and_against_the_schema(
    cloud: FakeCloudServer,
    seam: AsyncSeam,
    http: httpx.AsyncClient,
    openapi: Any,
    spare: dict[str, Any],
    path: str,
) -> None:
    sdk_call, http_params = SDK_CALLS[path]
    await sdk_call(seam, spare)  # raises on an answer the SDK cannot take
    sdk_verbs = {r.method for r in cloud.control.requests_to(path)}
    assert sdk_verbs and sdk_verbs <= _served(cloud)[path]

    documented = openapi.document["paths"][path]
    verb = "get" if "get" in documented else "post"
    params = http_params(spare)
    if verb == "get":
        response = await http.get(path, params=params)
    else:
        response = await http.post(path, json=params)
    assert response.status_code == 200, response.text
    openapi.check_response(path, response.json(), verb)
