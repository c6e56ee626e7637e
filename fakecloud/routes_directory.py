"""Seam routes for the workspace's directory: user identities, spaces, entrances, devices."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web

from fakecloud.app_keys import CONTROL
from fakecloud.collection import Collection
from fakecloud.errors import InvalidInput, NotFound
from fakecloud.json_types import JsonObject
from fakecloud.pagination import paginate
from fakecloud.params import Params
from fakecloud.queries import device_entries, entrance_entries
from fakecloud.responses import ok, page_response
from fakecloud.routing import CREATE_METHODS, DELETE_METHODS, add_routes

_SEARCHED = ("full_name", "display_name", "email_address", "phone_number", "name")


def _found(obj: JsonObject, search: str | None) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return any(needle in str(obj.get(field) or "").casefold() for field in _SEARCHED)


def _by_id_or_key(
    collection: Collection, obj_id: str | None, key_field: str, key: str | None
) -> JsonObject:
    if obj_id is None and key is None:
        raise InvalidInput(f"{collection.kind}_id or {key_field} is required")
    if obj_id is not None:
        found = collection.get(obj_id)
    else:
        found = next((o for o in collection if o.get(key_field) == key), None)
    if found is None:
        raise NotFound(f"{collection.kind} {obj_id or key} not found")
    return found


async def list_user_identities(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    ids = params.opt_str_list("user_identity_ids")
    search = params.opt_str("search")
    wanted = None if ids is None else set(ids)

    def entries(after: int) -> Iterator[tuple[int, JsonObject]]:
        for seq, _, u in state.user_identities.keyed_after(after):
            if (wanted is None or u.get("user_identity_id") in wanted) and _found(u, search):
                yield seq, u

    cursor = params.opt_str("page_cursor")
    page = paginate(entries, scope="user_identities", limit=params.limit(500), cursor=cursor)
    return page_response(request, params, "user_identities", page)


async def get_user_identity(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    user = _by_id_or_key(
        state.user_identities,
        params.opt_str("user_identity_id"),
        "user_identity_key",
        params.opt_str("user_identity_key"),
    )
    return ok({"user_identity": user})


async def create_user_identity(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    user = state.add_user_identity(
        full_name=params.opt_str("full_name"),
        email_address=params.opt_str("email_address"),
        phone_number=params.opt_str("phone_number"),
        user_identity_key=params.opt_str("user_identity_key"),
    )
    return ok({"user_identity": user})


async def delete_user_identity(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    state.delete_user_identity(params.req_str("user_identity_id"))
    return ok()


async def list_spaces(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    space_key, search = params.opt_str("space_key"), params.opt_str("search")

    def entries(after: int) -> Iterator[tuple[int, JsonObject]]:
        for seq, _, s in state.spaces.keyed_after(after):
            if (space_key is None or s.get("space_key") == space_key) and _found(s, search):
                yield seq, s

    cursor = params.opt_str("page_cursor")
    page = paginate(entries, scope="spaces", limit=params.limit(500), cursor=cursor)
    return page_response(request, params, "spaces", page)


async def get_space(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    space = _by_id_or_key(
        state.spaces, params.opt_str("space_id"), "space_key", params.opt_str("space_key")
    )
    return ok({"space": space})


async def list_entrances(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    ids = params.opt_str_list("acs_entrance_ids")
    search, system = params.opt_str("search"), params.opt_str("acs_system_id")
    space_id = params.opt_str("space_id")

    def entries(after: int) -> Iterator[tuple[int, JsonObject]]:
        for seq, e in entrance_entries(state, ids=ids, space_id=space_id, after=after):
            if _found(e, search) and (system is None or e.get("acs_system_id") == system):
                yield seq, e

    cursor = params.opt_str("page_cursor")
    page = paginate(entries, scope="acs_entrances", limit=params.limit(900), cursor=cursor)
    return page_response(request, params, "acs_entrances", page)


async def get_entrance(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    entrance_id = params.req_str("acs_entrance_id")
    entrance = state.acs_entrances.get(entrance_id)
    if entrance is None:
        raise NotFound(f"acs_entrance {entrance_id} not found")
    return ok({"acs_entrance": entrance})


async def list_devices(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    ids = params.opt_str_list("device_ids")
    space_id = params.opt_str("space_id")
    cursor = params.opt_str("page_cursor")
    page = paginate(
        lambda after: device_entries(state, ids=ids, space_id=space_id, after=after),
        scope="devices",
        limit=params.limit(500),
        cursor=cursor,
    )
    return page_response(request, params, "devices", page)


def add_directory_routes(router: web.UrlDispatcher) -> None:
    add_routes(
        router,
        [
            ("/user_identities/list", list_user_identities),
            ("/user_identities/get", get_user_identity),
            ("/user_identities/create", create_user_identity),
            ("/user_identities/delete", delete_user_identity),
            ("/spaces/list", list_spaces),
            ("/spaces/get", get_space),
            ("/acs/entrances/list", list_entrances),
            ("/acs/entrances/get", get_entrance),
            ("/devices/list", list_devices),
        ],
        methods={
            "/user_identities/create": CREATE_METHODS,
            "/user_identities/delete": DELETE_METHODS,
        },
    )
