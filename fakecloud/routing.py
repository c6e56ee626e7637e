"""Registering a Seam route for every HTTP method the fake cloud accepts on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ_METHODS = ("GET", "POST")
"""Every Seam route is served for GET (query, SDK style) and POST (JSON body)."""


def add_routes(
    router: web.UrlDispatcher,
    routes: Iterable[tuple[str, Handler]],
    *,
    extra_methods: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add each ``(path, handler)`` for GET and POST, plus ``extra_methods[path]``."""
    extra = extra_methods or {}
    for path, handler in routes:
        for method in (*READ_METHODS, *extra.get(path, ())):
            router.add_route(method, path, handler)
