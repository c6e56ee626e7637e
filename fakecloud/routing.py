"""Registering a Seam route for exactly the HTTP methods Seam's OpenAPI document lists for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ_METHODS = ("GET", "POST")
"""A read route is served for GET (query, SDK style) and POST (JSON body)."""
CREATE_METHODS = ("POST",)
UPDATE_METHODS = ("PATCH", "POST")
"""The official SDK updates with PATCH; the document also lists POST."""
DELETE_METHODS = ("DELETE", "POST")
"""The official SDK deletes with DELETE and a query string; the document also lists POST."""


def add_routes(
    router: web.UrlDispatcher,
    routes: Iterable[tuple[str, Handler]],
    *,
    methods: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add each ``(path, handler)`` for ``methods[path]``, by default :data:`READ_METHODS`."""
    chosen = methods or {}
    for path, handler in routes:
        for method in chosen.get(path, READ_METHODS):
            router.add_route(method, path, handler)
