"""The Seam route ``/events/list``: events after ``since`` (or inside ``between``), oldest first.

Both bounds are exclusive, as Seam documents for ``between``: ``since`` returns the events
logged strictly after that moment. A client that polls with the timestamp of the last event
it saw must therefore expect neither that event again nor, for events logged in the same
millisecond after its poll, to see them (overlap the window and de-duplicate by ``event_id``).
"""

from __future__ import annotations

from aiohttp import web

from fakecloud.app_keys import CONTROL
from fakecloud.errors import InvalidInput
from fakecloud.events import EventQuery
from fakecloud.params import Params
from fakecloud.responses import ok
from fakecloud.routing import add_routes
from fakecloud.timestamps import parse_iso


def _merged(params: Params, single: str, plural: str) -> set[str] | None:
    values = set(params.opt_str_list(plural) or [])
    one = params.opt_str(single)
    if one is not None:
        values.add(one)
    return values if (one is not None or params.has(plural)) else None


async def list_events(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    params = await Params.read(request)
    since = params.opt_time("since")
    between = params.opt_str_list("between")
    if since is None and between is None:
        raise InvalidInput("since or between is required")
    before = None
    if between is not None:
        if len(between) != 2:
            raise InvalidInput("between must hold exactly two timestamps")
        lower, before = (parse_iso(text, field="between") for text in between)
        since = lower if since is None else max(since, lower)
    query = EventQuery(
        after=since,
        before=before,
        event_types=_merged(params, "event_type", "event_types"),
        access_grant_ids=_merged(params, "access_grant_id", "access_grant_ids"),
        access_method_ids=_merged(params, "access_method_id", "access_method_ids"),
        limit=params.limit(500),
    )
    return ok({"events": state.events.query(query)})


def add_event_routes(router: web.UrlDispatcher) -> None:
    add_routes(router, [("/events/list", list_events)])
