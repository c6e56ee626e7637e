"""Seam routes for access grants and access methods."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fakecloud.app_keys import CONTROL
from fakecloud.errors import ApiError, InvalidInput, NotFound
from fakecloud.grants import UNSET
from fakecloud.json_types import JsonObject
from fakecloud.pagination import paginate
from fakecloud.params import Params
from fakecloud.queries import GrantFilter, any_key, grant_entries, method_entries
from fakecloud.responses import ok, page_response
from fakecloud.routing import CREATE_METHODS, DELETE_METHODS, UPDATE_METHODS, add_routes
from fakecloud.state import WorkspaceState


def _grant_filter(params: Params) -> GrantFilter:
    ids = params.opt_str_list("access_grant_ids")
    return GrantFilter(
        access_grant_ids=None if ids is None else set(ids),
        space_id=params.opt_str("space_id"),
        acs_entrance_id=params.opt_str("acs_entrance_id"),
        device_id=params.opt_str("device_id"),
        user_identity_id=params.opt_str("user_identity_id"),
        reservation_key=params.opt_str("reservation_key"),
        access_grant_key=params.opt_str("access_grant_key")
        if params.has("access_grant_key")
        else any_key(),
    )


async def list_grants(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    where = _grant_filter(params)
    cursor = params.opt_str("page_cursor")
    page = paginate(
        lambda after: grant_entries(state, where, after),
        scope="access_grants",
        limit=params.limit(500),
        cursor=cursor,
    )
    return page_response(request, params, "access_grants", page)


async def get_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    grant_id, key = params.opt_str("access_grant_id"), params.opt_str("access_grant_key")
    if grant_id is None and key is None:
        raise InvalidInput("access_grant_id or access_grant_key is required")
    return ok({"access_grant": state.grants.get(grant_id, key)})


def _requested_methods(params: Params) -> list[JsonObject]:
    items = params.opt_list("requested_access_methods")
    if items is None:
        raise InvalidInput("requested_access_methods is required")
    requested: list[JsonObject] = []
    for item in items:
        if isinstance(item, str):
            requested.append({"mode": item})
        elif isinstance(item, dict):
            requested.append({k: v for k, v in item.items() if k in ("mode", "code")})
        else:
            raise InvalidInput("requested_access_methods items must be objects")
    return requested


def _space_ids(state: WorkspaceState, params: Params) -> list[str]:
    space_ids = list(params.opt_str_list("space_ids") or [])
    for space_key in params.opt_str_list("space_keys") or []:
        match = next((s for s in state.spaces if s.get("space_key") == space_key), None)
        if match is None:
            raise NotFound(f"space with space_key {space_key!r} not found")
        space_ids.append(str(match["space_id"]))
    return space_ids


async def create_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    requested = _requested_methods(params)
    starts_at, ends_at = params.opt_time("starts_at"), params.opt_time("ends_at")
    if ends_at is not None and ends_at <= state.now():
        raise InvalidInput("ends_at must be in the future")
    space_ids = _space_ids(state, params)
    user_identity_id = params.opt_str("user_identity_id")
    new_user_id = None
    if user_identity_id is None:
        fields = params.opt_object("user_identity")
        if fields is None:
            raise InvalidInput("user_identity_id or user_identity is required")
        user_identity_id = new_user_id = _create_user(state, fields)
    try:
        grant = state.grants.create(
            user_identity_id=user_identity_id,
            requested_access_methods=requested,
            space_ids=space_ids,
            acs_entrance_ids=params.opt_str_list("acs_entrance_ids") or [],
            device_ids=params.opt_str_list("device_ids") or [],
            starts_at=starts_at,
            ends_at=ends_at,
            name=params.opt_str("name"),
            access_grant_key=params.opt_str("access_grant_key"),
            reservation_key=params.opt_str("reservation_key"),
        )
    except ApiError:
        if new_user_id is not None:  # a failed create leaves no new user behind
            state.user_identities.remove(new_user_id)
        raise
    return ok({"access_grant": grant})


def _create_user(state: WorkspaceState, fields: dict[str, Any]) -> str:
    texts = {k: v for k, v in fields.items() if isinstance(v, str)}
    user = state.add_user_identity(
        full_name=texts.get("full_name"),
        email_address=texts.get("email_address"),
        phone_number=texts.get("phone_number"),
        user_identity_key=texts.get("user_identity_key"),
    )
    return str(user["user_identity_id"])


async def update_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    grant_id, key = params.opt_str("access_grant_id"), params.opt_str("access_grant_key")
    if grant_id is None and key is None:
        raise InvalidInput("access_grant_id or access_grant_key is required")
    grant = state.grants.get(grant_id, key)
    starts_at = params.opt_time("starts_at")
    state.grants.update(
        str(grant["access_grant_id"]),
        starts_at=UNSET if starts_at is None else starts_at,
        ends_at=params.opt_time("ends_at") if params.has("ends_at") else UNSET,
        name=params.opt_str("name") if params.has("name") else UNSET,
    )
    return ok()


async def delete_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    grant_id = params.req_str("access_grant_id")
    state.grants.get(grant_id)
    state.grants.delete(grant_id)
    return ok()


_METHOD_FILTERS = (
    "access_grant_id",
    "access_grant_key",
    "space_id",
    "acs_entrance_id",
    "device_id",
    "access_code_id",
)


async def list_methods(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    state = control.state
    params = await Params.read(request)
    if all(params.opt_str(name) is None for name in _METHOD_FILTERS):
        raise InvalidInput(f"at least one of {', '.join(_METHOD_FILTERS)} is required")
    grant_id, key = params.opt_str("access_grant_id"), params.opt_str("access_grant_key")
    if grant_id is not None or key is not None:
        state.grants.get(grant_id, key)
    where = GrantFilter(
        access_grant_ids=None if grant_id is None else {grant_id},
        access_grant_key=any_key() if key is None else key,
        space_id=params.opt_str("space_id"),
        acs_entrance_id=params.opt_str("acs_entrance_id"),
        device_id=params.opt_str("device_id"),
    )
    none = bool(params.opt_str("access_code_id"))
    if not control.access_methods_pagination:
        everything = [] if none else [method for _, method in method_entries(state, where)]
        return ok({"access_methods": everything})
    cursor = params.opt_str("page_cursor")
    page = paginate(
        lambda after: () if none else method_entries(state, where, after),
        scope="access_methods",
        limit=params.limit(500),
        cursor=cursor,
    )
    return page_response(request, params, "access_methods", page)


async def get_method(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    method_id = params.req_str("access_method_id")
    method = state.access_methods.get(method_id)
    if method is None:
        raise NotFound(f"access_method {method_id} not found")
    return ok({"access_method": method})


def add_grant_routes(router: web.UrlDispatcher) -> None:
    add_routes(
        router,
        [
            ("/access_grants/list", list_grants),
            ("/access_grants/get", get_grant),
            ("/access_grants/create", create_grant),
            ("/access_grants/update", update_grant),
            ("/access_grants/delete", delete_grant),
            ("/access_methods/list", list_methods),
            ("/access_methods/get", get_method),
        ],
        methods={
            "/access_grants/create": CREATE_METHODS,
            "/access_grants/update": UPDATE_METHODS,
            "/access_grants/delete": DELETE_METHODS,
        },
    )
