"""HTTP control plane under ``/_control/`` (Bearer control token), for the demo and tests.

Every route takes a JSON body (POST) and answers ``{"ok": true, ...}``:

- ``outage`` ``{"mode", "retry_after_s", "delay_s"}`` (``"mode": null`` clears);
  ``outage/clear``; ``fail_next`` ``{"count", "mode", "path", "retry_after_s", "delay_s"}``
- ``requests`` (GET or POST, optional ``path``/``method``) → ``{"requests": [...]}``;
  ``requests/clear``
- ``clock_skew`` ``{"seconds"}``; ``access_methods_pagination`` ``{"enabled"}``
- ``access_grants/create`` (a seed-style grant, see :mod:`fakecloud.seed`) → ``access_grant``;
  ``access_grants/update`` ``{"access_grant_id", "starts_at", "ends_at", "name"}``;
  ``access_grants/delete`` ``{"access_grant_id"}``
- ``access_methods/update`` ``{"access_method_id", "code", "card_number", "display_name",
  "extra"}``; ``access_methods/issue|revoke|delete`` ``{"access_method_id"}``
- ``user_identities/delete`` ``{"user_identity_id", "finish"}``: as Seam's route does, or with
  ``"finish": false`` only Seam's ``being_deleted`` warnings (deletion under way)
- ``user_identities/create``, ``spaces/create``, ``acs_entrances/create``, ``devices/create``
  (seed-style objects)
- ``inject`` ``{"collection", "object", "access_grant_id"}``: a raw (possibly broken) object
- ``snapshot`` (GET or POST): every object and event of the workspace
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from fakecloud.app_keys import CONTROL
from fakecloud.errors import InvalidInput
from fakecloud.grants import UNSET
from fakecloud.json_types import JsonObject
from fakecloud.params import Params
from fakecloud.responses import ok
from fakecloud.routing import Handler
from fakecloud.seed import SeedError, grant_kwargs
from fakecloud.state import WorkspaceState

PREFIX = "/_control"


def _options(params: Params) -> dict[str, float]:
    options: dict[str, float] = {}
    for name in ("retry_after_s", "delay_s"):
        value = params.opt_number(name)
        if value is not None:
            options[name] = value
    return options


async def set_outage(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    params = await Params.read(request)
    mode = params.opt_str("mode")
    if mode is None:
        control.clear_outage()
        return ok({"outage": None})
    try:
        outage = control.set_outage(mode, **_options(params))
    except ValueError as err:
        raise InvalidInput(f"unknown outage mode {mode!r}") from err
    return ok({"outage": outage.mode.value})


async def clear_outage(request: web.Request) -> web.Response:
    request.app[CONTROL].clear_outage()
    return ok({"outage": None})


async def fail_next(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    params = await Params.read(request)
    count = int(params.opt_number("count") or 1)
    try:
        outage = control.fail_next(
            count, params.req_str("mode"), path=params.opt_str("path"), **_options(params)
        )
    except ValueError as err:
        raise InvalidInput(str(err)) from err
    return ok({"outage": outage.mode.value, "count": count})


async def list_requests(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    params = await Params.read(request)
    records = control.requests_to(params.opt_str("path"), params.opt_str("method"))
    return ok({"requests": [r.as_json() for r in records], "count": len(records)})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[CONTROL].clear_requests()
    return ok()


async def clock_skew(request: web.Request) -> web.Response:
    params = await Params.read(request)
    request.app[CONTROL].set_clock_skew(params.opt_number("seconds") or 0.0)
    return ok()


async def methods_pagination(request: web.Request) -> web.Response:
    params = await Params.read(request)
    enabled = params.opt_bool("enabled")
    request.app[CONTROL].access_methods_pagination = enabled is not False
    return ok()


async def create_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    body = (await Params.read(request)).as_dict()
    try:
        kwargs = grant_kwargs(body, state.now())
    except SeedError as err:
        raise InvalidInput(str(err)) from err
    return ok({"access_grant": state.grants.create(**kwargs)})


async def update_grant(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    starts_at = params.opt_time("starts_at")
    grant = state.grants.update(
        params.req_str("access_grant_id"),
        starts_at=UNSET if starts_at is None else starts_at,
        ends_at=params.opt_time("ends_at") if params.has("ends_at") else UNSET,
        name=params.opt_str("name") if params.has("name") else UNSET,
    )
    return ok({"access_grant": grant})


async def delete_grant(request: web.Request) -> web.Response:
    params = await Params.read(request)
    request.app[CONTROL].state.grants.delete(params.req_str("access_grant_id"))
    return ok()


async def update_method(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    method = state.methods.update(
        params.req_str("access_method_id"),
        code=params.opt_str("code"),
        card_number=params.opt_str("card_number"),
        display_name=params.opt_str("display_name"),
        extra=params.opt_object("extra"),
    )
    return ok({"access_method": method})


def _method_action(action: Callable[[WorkspaceState, str], Any]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        params = await Params.read(request)
        action(request.app[CONTROL].state, params.req_str("access_method_id"))
        return ok()

    return handle


def _directory_create(kind: str, add: Callable[..., JsonObject]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = (await Params.read(request)).as_dict()
        try:
            return ok({kind: add(request.app[CONTROL].state, **body)})
        except TypeError as err:
            raise InvalidInput(str(err)) from err

    return handle


async def delete_user(request: web.Request) -> web.Response:
    params = await Params.read(request)
    request.app[CONTROL].state.delete_user_identity(
        params.req_str("user_identity_id"), finish=params.opt_bool("finish") is not False
    )
    return ok()


async def inject(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    obj = params.opt_object("object")
    if obj is None:
        raise InvalidInput("object is required")
    key = state.inject_raw(
        params.req_str("collection"), obj, access_grant_id=params.opt_str("access_grant_id")
    )
    return ok({"key": key})


async def snapshot(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    names = ("spaces", "acs_entrances", "devices", "user_identities")
    body: JsonObject = {name: state.collection(name).values() for name in names}
    body["access_grants"] = state.access_grants.values()
    body["access_methods"] = state.access_methods.values()
    body["events"] = state.events.all()
    body["workspace_id"] = state.workspace_id
    return ok(body)


def add_control_routes(router: web.UrlDispatcher) -> None:
    routes: list[tuple[str, Handler]] = [
        ("outage", set_outage),
        ("outage/clear", clear_outage),
        ("fail_next", fail_next),
        ("requests", list_requests),
        ("requests/clear", clear_requests),
        ("clock_skew", clock_skew),
        ("access_methods_pagination", methods_pagination),
        ("access_grants/create", create_grant),
        ("access_grants/update", update_grant),
        ("access_grants/delete", delete_grant),
        ("access_methods/update", update_method),
        ("access_methods/issue", _method_action(lambda s, m: s.methods.issue(m))),
        ("access_methods/revoke", _method_action(lambda s, m: s.methods.revoke(m))),
        ("access_methods/delete", _method_action(lambda s, m: s.methods.delete(m))),
        ("user_identities/create", _directory_create("user_identity", _add_user)),
        ("user_identities/delete", delete_user),
        ("spaces/create", _directory_create("space", _add_space)),
        ("acs_entrances/create", _directory_create("acs_entrance", _add_entrance)),
        ("devices/create", _directory_create("device", _add_device)),
        ("inject", inject),
        ("snapshot", snapshot),
    ]
    for path, handler in routes:
        router.add_route("POST", f"{PREFIX}/{path}", handler)
        if path in ("requests", "snapshot"):
            router.add_route("GET", f"{PREFIX}/{path}", handler)


def _add_user(state: WorkspaceState, **fields: Any) -> JsonObject:
    return state.add_user_identity(**fields)


def _add_space(state: WorkspaceState, **fields: Any) -> JsonObject:
    return state.add_space(**fields)


def _add_entrance(state: WorkspaceState, **fields: Any) -> JsonObject:
    return state.add_acs_entrance(**fields)


def _add_device(state: WorkspaceState, **fields: Any) -> JsonObject:
    return state.add_device(**fields)
