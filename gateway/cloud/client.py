"""A thin async client for Seam's HTTP API (HTTP/1.1 of its own; httpx through a proxy).

Every endpoint is ``POST /<resource>/<verb>`` with a JSON body and a bearer key. List calls
follow Seam's cursor pagination (``limit`` + ``page_cursor`` in, ``pagination`` out; an endpoint
that returns no ``pagination`` is one page). 429 and 5xx are retried with backoff, honouring
``Retry-After``; 401/403 raise :class:`CloudAuthError` at once. The server's ``Date`` header is
kept (:attr:`CloudClient.last_server_time`) for the clock-trust check.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import msgspec
import msgspec.structs

from drivers.backoff import Backoff
from gateway.cloud.errors import (
    CloudAuthError,
    CloudBadResponseError,
    CloudError,
    CloudNotFoundError,
    CloudRateLimitedError,
    CloudRequestError,
    CloudUnavailableError,
)
from gateway.cloud.http11 import Http11, HttpError, HttpTimeout

if TYPE_CHECKING:
    import httpx

    from gateway.cloud.via_httpx import HttpxPoster

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER_S = 300.0
T = TypeVar("T")
Decode = Callable[[str, bytes], T]
"""Reads a successful answer's body (``path`` for messages); raises
:class:`CloudBadResponseError`, which is retried, if it cannot."""


class CloudClient:
    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": "lockgate/0.1",
            "Accept": "application/json",
        }
        self._poster: Http11 | HttpxPoster
        if transport is None and not _proxied(endpoint):
            self._poster = Http11(endpoint.rstrip("/"), headers, timeout_s)
        else:  # a proxy to go through, or a test's transport: httpx, imported only then
            from gateway.cloud.via_httpx import HttpxPoster

            self._poster = HttpxPoster(endpoint.rstrip("/"), headers, timeout_s, transport)
        self._max_retries = max_retries
        self._backoff = backoff or Backoff(0.5, 30.0)
        self._sleep = sleep
        self.last_server_time: datetime | None = None
        self.requests = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._poster.aclose()

    async def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``path`` with ``body``; returns the decoded JSON object or raises CloudError."""
        return await self._retrying(path, body or {}, _object)

    async def _retrying(self, path: str, body: dict[str, Any], decode: Decode[T]) -> T:
        self._backoff.reset()
        attempt = 0
        while True:
            attempt += 1
            try:
                return decode(path, await self._once(path, body))
            except (CloudUnavailableError, CloudBadResponseError) as err:
                if attempt > self._max_retries:
                    raise
                delay = self._backoff.next_delay()
                if isinstance(err, _RetryAfter) and err.retry_after is not None:
                    delay = max(delay, err.retry_after)
                log.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,
                    "cloud %s failed (%s); retry %d in %.1fs",
                    path,
                    err,
                    attempt,
                    delay,
                )
                await self._sleep(delay)

    async def _once(self, path: str, body: dict[str, Any]) -> bytes:
        """The body of a successful answer; an error answer raises its CloudError."""
        self.requests += 1
        try:
            reply = await self._poster.post(path, msgspec.json.encode(body))
        except HttpTimeout as err:
            raise CloudUnavailableError(f"{path}: timed out") from err
        except HttpError as err:
            raise CloudUnavailableError(f"{path}: {err}") from err
        status, headers, content = reply.status, reply.headers, reply.content
        self._note_date(headers)
        if status in (401, 403):
            raise CloudAuthError(
                f"{path}: HTTP {status} — the cloud refused the API key; check the key file"
            )
        if status == 429:
            raise _RateLimited(f"{path}: HTTP 429 rate limited", _retry_after(headers))
        if status >= 500:
            raise _Unavailable(f"{path}: HTTP {status}", _retry_after(headers))
        if status < 400:
            return content
        try:
            data = msgspec.json.decode(content)
        except (msgspec.DecodeError, ValueError) as err:
            raise CloudRequestError(f"{path}: HTTP {status} with a non-JSON body") from err
        error = (data.get("error") if isinstance(data, dict) else None) or {}
        kind = error.get("type", "error") if isinstance(error, dict) else "error"
        message = error.get("message", "") if isinstance(error, dict) else ""
        failure = CloudNotFoundError if status == 404 else CloudRequestError
        raise failure(f"{path}: HTTP {status} {kind}: {message}")

    async def list_all(
        self, path: str, items_key: str, body: dict[str, Any] | None = None, page_size: int = 500
    ) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following ``pagination`` to the last page."""
        items: list[dict[str, Any]] = []
        async for page in self.pages(path, items_key, body, page_size):
            items.extend(page)
        return items

    async def pages(
        self, path: str, items_key: str, body: dict[str, Any] | None = None, page_size: int = 500
    ) -> AsyncIterator[list[Any]]:
        """The items of a list endpoint one page at a time, as each page arrives (a caller that
        digests each page before asking for the next never holds the whole list)."""
        request = dict(body or {})
        request["limit"] = page_size
        seen_cursors: set[str] = set()
        while True:
            data = await self.call(path, request)
            page = data.get(items_key)
            if not isinstance(page, list):
                raise CloudBadResponseError(f"{path}: '{items_key}' missing or not a list")
            pagination = data.get("pagination")
            del data
            yield page
            if not isinstance(pagination, dict) or not pagination.get("has_next_page"):
                return
            cursor = pagination.get("next_page_cursor")
            if not isinstance(cursor, str) or cursor in seen_cursors:
                raise CloudBadResponseError(f"{path}: pagination cursor missing or repeating")
            seen_cursors.add(cursor)
            request["page_cursor"] = cursor

    async def raw_pages(
        self,
        path: str,
        items_key: str,
        body: dict[str, Any] | None = None,
        page_size: int = 500,
        recall: Recall | None = None,
    ) -> AsyncIterator[RawPage]:
        """:meth:`pages`, each item left as its JSON text (:class:`msgspec.Raw`, a view of the
        answer's bytes): the caller decodes only the items it has not seen before. A page is
        split into its items without building any of them (a tenth of decoding it).

        ``recall``: the caller's memory of whole answers (see :data:`Recall`). A page it
        knows by its bytes is not split at all: it comes with no items, ``known`` set, and
        the pagination the caller read from the same bytes before."""
        decode = _page_reader(items_key, recall)
        request = dict(body or {})
        request["limit"] = page_size
        seen_cursors: set[str] = set()
        while True:
            page = await self._retrying(path, request, decode)
            yield page
            pagination = page.pagination
            if not isinstance(pagination, dict) or not pagination.get("has_next_page"):
                return
            cursor = pagination.get("next_page_cursor")
            if not isinstance(cursor, str) or cursor in seen_cursors:
                raise CloudBadResponseError(f"{path}: pagination cursor missing or repeating")
            seen_cursors.add(cursor)
            request["page_cursor"] = cursor

    def _note_date(self, headers: Mapping[str, str]) -> None:
        value = headers.get("date")
        if value:
            try:
                self.last_server_time = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                log.debug("unparseable Date header from the cloud")


def _proxied(endpoint: str) -> bool:
    """Whether the environment sends requests to ``endpoint`` through a proxy (httpx's
    ``trust_env``: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)."""
    proxies = urllib.request.getproxies_environment()
    scheme, _, rest = endpoint.partition("://")
    if not (proxies.get(scheme.lower()) or proxies.get("all")):
        return False
    host = rest.split("/", 1)[0]
    return not urllib.request.proxy_bypass(host)


def _object(path: str, content: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(content)
    except (msgspec.DecodeError, ValueError) as err:
        raise CloudBadResponseError(f"{path}: response is not valid JSON") from err
    if not isinstance(data, dict):
        raise CloudBadResponseError(f"{path}: response is not a JSON object")
    return data


class RawPage(msgspec.Struct):
    """One page of a list endpoint: its items as JSON text, Seam's ``pagination``, and the
    whole answer's bytes (``body``, which the items are views of); with a ``recall``, the
    digest it gave and whether it knew the page (then ``items`` is empty)."""

    items: list[msgspec.Raw]
    pagination: Any
    body: bytes
    digest: bytes | None = None
    known: bool = False


Recall = Callable[[bytes], tuple[bytes, bool, Any]]
"""For an answer's bytes: a digest the caller keys pages by, whether it knows the page whole
(its items then are the caller's already) and, if it does, the page's ``pagination`` as read
from the same bytes before."""


@functools.lru_cache(maxsize=16)
def _page_decoder(items_key: str) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(
        msgspec.defstruct(
            "Page",
            [("items", list[msgspec.Raw]), ("pagination", Any, None)],
            rename={"items": items_key},
        )
    )


def split_page(path: str, items_key: str, content: bytes) -> tuple[list[msgspec.Raw], Any]:
    """A page's items (as JSON text) and its ``pagination``; raises
    :class:`CloudBadResponseError` if it is not a page of ``items_key``."""
    try:
        items, pagination = msgspec.structs.astuple(_page_decoder(items_key).decode(content))
    except msgspec.ValidationError as err:
        raise CloudBadResponseError(f"{path}: '{items_key}' missing or not a list") from err
    except (msgspec.DecodeError, ValueError) as err:
        raise CloudBadResponseError(f"{path}: response is not valid JSON") from err
    return items, pagination


def _page_reader(items_key: str, recall: Recall | None) -> Decode[RawPage]:
    """A reader of the pages whose items are under ``items_key``."""

    def read(path: str, content: bytes) -> RawPage:
        digest = None
        if recall is not None:
            digest, known, pagination = recall(content)
            if known:
                return RawPage([], pagination, content, digest, known=True)
        items, pagination = split_page(path, items_key, content)
        return RawPage(items, pagination, content, digest)

    return read


class _RetryAfter(CloudError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _RateLimited(_RetryAfter, CloudRateLimitedError):
    pass


class _Unavailable(_RetryAfter, CloudUnavailableError):
    pass


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = headers.get("date")
    now = email.utils.parsedate_to_datetime(date) if date else None
    if now is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)
