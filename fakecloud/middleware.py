"""aiohttp middlewares of the fake cloud, outermost first.

``log_requests`` (API requests only) → ``add_headers`` (``Date`` from the workspace clock plus
the skew knob, ``seam-request-id``) → ``seam_errors`` (errors as Seam bodies) →
``simulate_outage`` (API requests only) → ``authenticate`` (API key, or the control token under
``/_control/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from email.utils import format_datetime
from typing import assert_never

from aiohttp import web

from fakecloud.app_keys import API_KEY, CONTROL, CONTROL_TOKEN
from fakecloud.errors import ApiError, Unauthorized
from fakecloud.outage import OutageMode
from fakecloud.params import Params
from fakecloud.request_log import RequestRecord
from fakecloud.responses import JSON_CONTENT_TYPE, error_body, error_response
from fakecloud.routing import Handler

_LOG = logging.getLogger(__name__)
CONTROL_PREFIX = "/_control/"
_REQUEST_ID = web.RequestKey("fakecloud_request_id", str)
_RECORD = web.RequestKey("fakecloud_record", RequestRecord)
MALFORMED_BODY = b'{"ok": true, "access_grants": [{"access_grant_id": "'


def is_control(request: web.Request) -> bool:
    return request.path.startswith(CONTROL_PREFIX)


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_control(request):
        return await handler(request)
    control = request.app[CONTROL]
    try:
        logged = (await Params.read(request)).as_dict(keep_ignored=True)
    except ApiError:
        logged = {"_unparsed_body": (await request.read()).decode(errors="replace")}
    record = RequestRecord(request.method, request.path, logged, at=control.server_time())
    request[_RECORD] = record
    control.requests.add(record)
    response = await handler(request)
    record.status = response.status
    control.requests.notify()
    return response


@web.middleware
async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = str(uuid.uuid4())
    request[_REQUEST_ID] = request_id
    response = await handler(request)
    server_time = request.app[CONTROL].server_time()
    response.headers["Date"] = format_datetime(server_time, usegmt=True)
    response.headers["seam-request-id"] = request_id
    return response


@web.middleware
async def seam_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.get(_REQUEST_ID)
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err, request_id)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        kind = "not_found" if err.status == 404 else err.reason.lower().replace(" ", "_")
        return error_body(err.status, kind, err.reason)
    except Exception:
        _LOG.exception("fake cloud handler failed on %s", request.path)
        return error_body(500, "internal_server_error", "internal error in the fake cloud")


@web.middleware
async def simulate_outage(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_control(request):
        return await handler(request)
    outages = request.app[CONTROL].outages
    outage = outages.take(request.path)
    if outage is None:
        return await handler(request)
    record = request.get(_RECORD)
    if record is not None:
        record.outage = outage.mode.value
    match outage.mode:
        case OutageMode.REFUSE:
            return error_body(503, "service_unavailable", "simulated outage")
        case OutageMode.HTTP_429:
            response = error_body(429, "rate_limited", "simulated rate limit")
            response.headers["Retry-After"] = str(outage.retry_after_s)
            return response
        case OutageMode.MALFORMED_JSON:
            return web.Response(body=MALFORMED_BODY, content_type=JSON_CONTENT_TYPE)
        case OutageMode.UNAUTHORIZED:
            raise Unauthorized("simulated: API key rejected")
        case OutageMode.HANG:
            await outages.wait_released()
            if outages.closing:
                return error_body(503, "service_unavailable", "fake cloud shutting down")
            return await handler(request)
        case OutageMode.SLOW:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(outage.delay_s):
                    await outages.wait_released()
            return await handler(request)
    assert_never(outage.mode)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[CONTROL_TOKEN] if is_control(request) else request.app[API_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    valid = (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )
    if not valid:
        raise Unauthorized("missing or invalid Authorization: Bearer key")
    return await handler(request)


MIDDLEWARES = (log_requests, add_headers, seam_errors, simulate_outage, authenticate)
