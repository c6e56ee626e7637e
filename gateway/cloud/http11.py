"""A lean HTTP/1.1 client for the cloud API: POST a JSON body, read the whole answer.

A full sync fetches about 80 pages of half a megabyte. Through httpx each cost ~2 ms of CPU,
most of it passing every 64 KiB read up through httpcore, anyio and httpx's stream layers: the
client alone cost twice what decoding the pages did. This one is an asyncio buffered protocol:
h11 (the HTTP/1.1 parser httpx itself uses) writes the request and reads the answer's head;
a body framed by ``Content-Length`` (what the cloud sends) is then received straight into one
buffer of that size, the socket's reads landing in it with no copy in between. Any other
framing (chunked, up to the close, after an informational answer) is read through h11.

What it does: TLS with the system's default verification (``ssl.create_default_context``), a
keep-alive connection reused across requests (a stale one, closed by the server while idle, is
replaced and the request sent again once, as httpcore does), a connect timeout and a read
timeout (no byte for ``timeout_s``) of ``timeout_s`` each, ``gzip``/``deflate`` answers. What it
leaves to httpx: proxies. The :class:`~gateway.cloud.client.CloudClient` uses httpx instead
whenever the environment names a proxy, or a test gives it an httpx transport.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

READ_BYTES = 1 << 16
"""The buffer the head (and any body not framed by length) is read into."""
MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """The exchange failed (connection refused or lost, bad framing, TLS): retryable."""


class HttpTimeout(HttpError):
    """No connection or no data within the timeout."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    """Header names in lower case (a repeated header: the last one)."""
    content: bytes


class Http11:
    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            # Not the URL itself: a mistyped one may hold a key pasted into it.
            raise ValueError("the cloud endpoint is not an http(s) URL with a host")
        if url.username is not None or url.password is not None:
            # Seam takes the API key as a bearer token; credentials in the URL would be dropped
            # silently (or logged by a proxy), so they are refused.
            raise ValueError("the cloud endpoint must not carry a user name or password")
        self._tls = ssl.create_default_context() if url.scheme == "https" else None
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/")
        default = (url.port is None) or (url.port == (443 if self._tls else 80))
        host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
        self._headers = [
            ("Host", host if default else f"{host}:{self._port}"),
            *headers.items(),
            ("Accept-Encoding", "gzip, deflate"),
            ("Content-Type", "application/json"),
        ]
        self._timeout = timeout_s
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(self, path: str, body: bytes) -> Reply:
        if self._closed:
            raise HttpError("the client is closed")
        request = h11.Request(
            method="POST",
            target=self._prefix + path,
            headers=[*self._headers, ("Content-Length", str(len(body)))],
        )
        while self._idle:
            conn = self._idle.pop()
            if not conn.usable():
                conn.close()
                continue
            try:
                return await self._exchange(conn, request, body)
            except _Stale:
                continue  # closed by the server while idle: nothing was answered; again
        return await self._exchange(await self._connect(), request, body)

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError as err:
            raise HttpTimeout("connect timed out") from err
        except (OSError, ssl.SSLError) as err:
            raise HttpError(f"{type(err).__name__}: {err}") from err
        return conn

    async def _exchange(self, conn: _Connection, request: h11.Request, body: bytes) -> Reply:
        try:
            reply = await conn.exchange(request, body, self._timeout)
        except BaseException:
            conn.close()
            raise
        if conn.reusable() and not self._closed:
            self._idle.append(conn)
        else:
            conn.close()
        return reply


class _Stale(HttpError):
    """A reused connection was closed before any answer: safe to send again."""


class _Phase(enum.Enum):
    IDLE = "idle"
    HEAD = "head"
    """Reading the answer's head (into the read buffer)."""
    BODY = "body"
    """Reading a body of known length (straight into its own buffer)."""
    FRAMED = "framed"
    """Reading a body through h11 (chunked, up to the close)."""
    CLOSED = "closed"


class _Connection(asyncio.BufferedProtocol):
    """One connection, one exchange at a time (see the module's doc)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(READ_BYTES)
        self._view = memoryview(self._buffer)
        self._phase = _Phase.IDLE
        self._h11 = h11.Connection(h11.CLIENT)
        self._head = bytearray()
        self._body = bytearray()
        self._body_view = memoryview(self._body)
        self._got = 0
        self._chunks: list[bytes] = []
        self._status = 0
        self._http_version = b""
        self._headers: dict[str, str] = {}
        self._keep = False
        self._received = 0
        """Bytes received in this exchange (none: a reused connection that was stale)."""
        self._waiter: asyncio.Future[Reply] | None = None
        self._used = False
        self._reusable = False

    # --- asyncio's side ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._phase is _Phase.BODY:
            return self._body_view[self._got :]
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self._received += nbytes
        try:
            if self._phase is _Phase.BODY:
                self._got += nbytes
                if self._got == len(self._body):
                    self._finish(bytes(self._body), self._keep)
            elif self._phase is _Phase.HEAD:
                self._head_bytes(self._view[:nbytes])
            elif self._phase is _Phase.FRAMED:
                self._h11.receive_data(bytes(self._view[:nbytes]))
                self._pump()
            else:  # bytes nobody asked for: this connection cannot be trusted again
                self._abandon()
        except h11.ProtocolError as err:
            self._fail(HttpError(f"{type(err).__name__}: {err}"))

    def eof_received(self) -> bool | None:
        if self._phase is _Phase.FRAMED:
            try:
                self._h11.receive_data(b"")
                self._pump()
            except h11.ProtocolError as err:
                self._fail(HttpError(f"{type(err).__name__}: {err}"))
        self._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    # --- the exchange --------------------------------------------------------------------------
    def usable(self) -> bool:
        t = self._transport
        return self._phase is _Phase.IDLE and t is not None and not t.is_closing()

    def reusable(self) -> bool:
        return self._reusable and self.usable()

    def close(self) -> None:
        self._phase = _Phase.CLOSED
        if self._transport is not None:
            self._transport.close()

    async def exchange(self, request: h11.Request, body: bytes, read_timeout_s: float) -> Reply:
        assert self._transport is not None
        assert self._phase is _Phase.IDLE
        reused, self._used = self._used, True
        conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        data = conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        self._phase, self._received, self._reusable = _Phase.HEAD, 0, False
        self._head, self._chunks, self._status, self._headers = bytearray(), [], 0, {}
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        watch = _Watch(self, waiter, read_timeout_s)
        try:
            self._transport.write(data)
            return await waiter
        except _Closed as err:
            if reused and self._received == 0:
                raise _Stale("connection closed while idle") from err
            raise
        finally:
            watch.cancel()
            self._waiter = None

    def _head_bytes(self, data: memoryview) -> None:
        start = max(0, len(self._head) - 3)
        self._head += data
        end = self._head.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self._head) > MAX_HEADER_BYTES:
                self._fail(HttpError("answer head too long"))
            return
        end += 4
        head, rest = bytes(self._head[:end]), bytes(self._head[end:])
        self._h11.receive_data(head)
        event = self._h11.next_event()
        if isinstance(event, h11.Response):
            self._answer(event)
            length = self._headers.get("content-length")
            if (
                length is not None
                and "transfer-encoding" not in self._headers
                and event.status_code not in (204, 304)
            ):  # h11 checked the length's syntax
                self._sized(int(length), rest)
                return
        else:  # informational (1xx) or incomplete: h11 reads the rest
            self._pending(event)
        self._phase = _Phase.FRAMED
        self._h11.receive_data(rest)
        self._pump()

    def _sized(self, length: int, rest: bytes) -> None:
        """A body of ``length`` bytes, ``rest`` of it already here."""
        version, connection = self._http_version, self._headers.get("connection", "")
        keep = version == b"1.1" and "close" not in connection.lower()
        if len(rest) > length:  # more than the answer: never reuse this connection
            keep = False
        self._body = bytearray(length)
        self._body_view = memoryview(self._body)
        self._got = min(len(rest), length)
        self._body_view[: self._got] = rest[: self._got]
        self._keep = keep
        self._phase = _Phase.BODY
        if self._got == length:
            self._finish(bytes(self._body), keep)

    def _answer(self, event: h11.Response) -> None:
        self._status = event.status_code
        self._http_version = event.http_version
        self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}

    def _pending(self, event: object) -> None:
        if isinstance(event, h11.Response):
            self._answer(event)
        elif isinstance(event, h11.Data):
            self._chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            conn = self._h11
            keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
            content = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._finish(content, keep)
        elif isinstance(event, h11.ConnectionClosed):
            self._fail(_Closed("connection closed before the answer ended"))

    def _pump(self) -> None:
        while self._phase is _Phase.FRAMED:
            event = self._h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            self._pending(event)

    def _finish(self, content: bytes, keep: bool) -> None:
        self._phase = _Phase.IDLE
        self._body = bytearray()
        self._body_view = memoryview(self._body)
        self._reusable = keep
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            content = _decoded(content, self._headers.get("content-encoding"))
        except HttpError as err:
            waiter.set_exception(err)
            return
        waiter.set_result(Reply(self._status, self._headers, content))

    def _fail(self, err: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(err)
        self.close()

    def _abandon(self) -> None:
        self._reusable = False
        self.close()

    def _lost(self, exc: Exception | None) -> None:
        if self._phase is not _Phase.IDLE and self._phase is not _Phase.CLOSED:
            why = f"{type(exc).__name__}: {exc}" if exc else "connection closed"
            self._fail(_Closed(f"{why} before the answer ended"))
        self._phase = _Phase.CLOSED


class _Closed(HttpError):
    """The connection ended during an exchange."""


class _Watch:
    """The read timeout of one exchange: fails it when no byte came for ``timeout_s``."""

    def __init__(self, conn: _Connection, waiter: asyncio.Future[Reply], timeout_s: float) -> None:
        self._conn, self._waiter, self._timeout = conn, waiter, timeout_s
        self._seen = -1
        self._handle = asyncio.get_running_loop().call_later(timeout_s, self._check)

    def _check(self) -> None:
        if self._waiter.done():
            return
        if self._conn._received == self._seen:
            self._conn._fail(HttpTimeout("timed out"))
            return
        self._seen = self._conn._received
        self._handle = asyncio.get_running_loop().call_later(self._timeout, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


def _decoded(content: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return content
    try:
        if encoding == "gzip":
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:
                return zlib.decompress(content, -zlib.MAX_WBITS)  # raw deflate, as sent by some
    except zlib.error as err:
        raise HttpError(f"{encoding} body does not decompress: {err}") from err
    raise HttpError(f"unsupported content encoding {encoding!r}")
