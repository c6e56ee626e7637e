"""A lean HTTP/1.1 client for the cloud API: POST a JSON body, read the whole answer.

A full sync fetches about 80 pages of half a megabyte. Through httpx each cost ~2 ms of CPU,
most of it passing every 64 KiB read up through httpcore, anyio and httpx's stream layers: the
client alone cost twice what decoding the pages did. This one reads straight from an asyncio
stream into h11 (the HTTP/1.1 parser httpx itself uses: framing by ``Content-Length``, chunked
or close; keep-alive), in reads of up to 1 MiB.

What it does: TLS with the system's default verification (``ssl.create_default_context``), a
keep-alive connection reused across requests (a stale one, closed by the server while idle, is
replaced and the request sent again once, as httpcore does), connect and read timeouts of
``timeout_s`` each, ``gzip``/``deflate`` answers. What it leaves to httpx: proxies. The
:class:`~gateway.cloud.client.CloudClient` uses httpx instead whenever the environment names a
proxy, or a test gives it an httpx transport.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

READ_BYTES = 1 << 20
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
            raise ValueError(f"not an http(s) URL: {base_url!r}")
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
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._tls,
                    limit=READ_BYTES,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError as err:
            raise HttpTimeout("connect timed out") from err
        except (OSError, ssl.SSLError) as err:
            raise HttpError(f"{type(err).__name__}: {err}") from err
        return _Connection(reader, writer)

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


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._used = False

    def usable(self) -> bool:
        return not (self._writer.is_closing() or self._reader.at_eof())

    def reusable(self) -> bool:
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    def close(self) -> None:
        self._writer.close()

    async def exchange(self, request: h11.Request, body: bytes, read_timeout_s: float) -> Reply:
        conn = self._h11
        reused, self._used = self._used, True
        if reused:
            conn.start_next_cycle()
        try:
            self._writer.write(
                conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
            )
            status, headers, chunks = 0, {}, []
            answered = False
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(read_timeout_s):
                        data = await self._reader.read(READ_BYTES)
                    if not data and reused and not answered:
                        raise _Stale("connection closed while idle")
                    answered = answered or bool(data)
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise HttpError("connection closed before the answer ended")
        except TimeoutError as err:
            raise HttpTimeout("timed out") from err
        except ConnectionError as err:
            if reused and not answered:
                raise _Stale(str(err)) from err
            raise HttpError(f"{type(err).__name__}: {err}") from err
        except (OSError, ssl.SSLError, h11.ProtocolError) as err:
            raise HttpError(f"{type(err).__name__}: {err}") from err
        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return Reply(status, headers, _decoded(content, headers.get("content-encoding")))


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
