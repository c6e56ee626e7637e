"""The aiohttp application of the fake cloud: Seam routes, control routes, middlewares."""

from __future__ import annotations

from aiohttp import web

from fakecloud.app_keys import API_KEY, CONTROL, CONTROL_TOKEN
from fakecloud.control import FakeCloudControl
from fakecloud.control_routes import add_control_routes
from fakecloud.middleware import MIDDLEWARES
from fakecloud.routes_directory import add_directory_routes
from fakecloud.routes_events import add_event_routes
from fakecloud.routes_grants import add_grant_routes


def build_app(
    control: FakeCloudControl, *, api_key: str, control_token: str | None = None
) -> web.Application:
    """The application serving ``control.state`` to clients holding ``api_key``.

    Without ``control_token`` the ``/_control/`` routes are not served.
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    app = web.Application(middlewares=MIDDLEWARES)
    app[CONTROL] = control
    app[API_KEY] = api_key
    app[CONTROL_TOKEN] = control_token or ""
    add_grant_routes(app.router)
    add_directory_routes(app.router)
    add_event_routes(app.router)
    if control_token:
        add_control_routes(app.router)
    return app
