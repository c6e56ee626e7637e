"""Seam response envelopes: ``{"<key>": ..., "ok": true}``, pages, and error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiDict

from fakecloud.errors import ApiError
from fakecloud.json_types import JsonObject
from fakecloud.pagination import Page
from fakecloud.params import IGNORED_KEYS, Params

JSON_CONTENT_TYPE = "application/json"


def ok(payload: Mapping[str, Any] | None = None) -> web.Response:
    return web.json_response({**(payload or {}), "ok": True})


def page_response(request: web.Request, params: Params, key: str, page: Page) -> web.Response:
    return ok({key: page.items, "pagination": pagination_of(request, params, page)})


def pagination_of(request: web.Request, params: Params, page: Page) -> JsonObject:
    cursor = page.next_cursor
    return {
        "has_next_page": cursor is not None,
        "next_page_cursor": cursor,
        "next_page_url": None if cursor is None else next_page_url(request, params, cursor),
    }


def next_page_url(request: web.Request, params: Params, cursor: str) -> str:
    """The absolute GET URL of the next page: the same parameters and the new cursor."""
    query: MultiDict[str] = MultiDict()
    for name, value in params.as_dict().items():
        if name in IGNORED_KEYS or name == "page_cursor":
            continue
        for item in value if isinstance(value, list) else [value]:
            text = _query_text(item)
            if text is not None:
                query.add(name, text)
    query.add("page_cursor", cursor)
    return str(request.url.with_query(query))


def _query_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def error_response(error: ApiError, request_id: str | None = None) -> web.Response:
    return web.json_response(error.body(request_id), status=error.status)


def error_body(status: int, error_type: str, message: str) -> web.Response:
    body = {"error": {"type": error_type, "message": message}, "ok": False}
    return web.json_response(body, status=status)
