"""The lean HTTP/1.1 client against a server that answers with exact bytes: keep-alive, a
connection the server closed while idle, chunked and gzip answers, answers cut short."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from gateway.cloud.client import CloudClient
from gateway.cloud.errors import CloudUnavailableError
from gateway.cloud.http11 import Http11, HttpError
from gateway.cloud.via_httpx import HttpxPoster

Answer = Callable[[int, bytes], bytes]
"""(request number, request body) -> the raw bytes to answer with."""


@dataclass
class Server:
    answer: Answer
    close_after: bool = False
    """Close the connection after each answer (without saying so)."""
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                writer.write(self.answer(len(self.requests), body))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server(lambda n, body: _ok(b'{"n": %d}' % n))
    listening = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    s.url = f"http://127.0.0.1:{port}/api"
    async with listening:
        yield s


def _ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_requests_share_one_connection(server: Server) -> None:
    client = Http11(server.url, {"Authorization": "Bearer k"}, 5.0)
    try:
        assert (await client.post("/x/list", b"{}")).content == b'{"n": 1}'
        assert (await client.post("/x/list", b"{}")).content == b'{"n": 2}'
    finally:
        await client.aclose()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /api/x/list HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer k\r\n" in first
    assert b"\r\nhost: 127.0.0.1:" in first.lower()


async def test_a_connection_the_server_closed_while_idle_is_replaced(server: Server) -> None:
    server.close_after = True
    client = Http11(server.url, {}, 5.0)
    try:
        await client.post("/a", b"{}")
        await asyncio.sleep(0)  # let the close arrive, or not: both must work
        assert (await client.post("/b", b"{}")).content == b'{"n": 2}'
        assert (await client.post("/c", b"{}")).content == b'{"n": 3}'
    finally:
        await client.aclose()
    assert server.connections == 3
    assert len(server.requests) == 3  # nothing sent twice to a live server


async def test_chunked_and_gzip_answers_are_read_whole(server: Server) -> None:
    payload = b'{"items": [' + b",".join(b'"%d"' % i for i in range(5000)) + b"]}"
    packed = gzip.compress(payload)
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(packed[i : i + 1000]), packed[i : i + 1000])
        for i in range(0, len(packed), 1000)
    )
    server.answer = lambda n, body: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    client = Http11(server.url, {}, 5.0)
    try:
        reply = await client.post("/x", b"{}")
        assert reply.content == payload and reply.status == 200
        assert (await client.post("/x", b"{}")).content == payload  # same connection
    finally:
        await client.aclose()
    assert server.connections == 1


async def test_an_answer_cut_short_is_an_error_and_retried_by_the_cloud_client(
    server: Server,
) -> None:
    def answer(n: int, body: bytes) -> bytes:
        if n == 1:
            return b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cut'
        return _ok(b'{"ok": true}')

    server.answer, server.close_after = answer, True
    client = Http11(server.url, {}, 5.0)
    with pytest.raises(HttpError):
        await client.post("/x", b"{}")
    await client.aclose()

    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    server.requests.clear()
    async with CloudClient(server.url, "k", sleep=sleep) as cloud:
        assert await cloud.call("/x") == {"ok": True}
    assert len(delays) == 1  # the cut answer was retried once, after a backoff


async def test_a_silent_server_times_out(server: Server) -> None:
    never = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await never.wait()

    listening = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        async with CloudClient(f"http://127.0.0.1:{port}", "k", timeout_s=0.2, max_retries=0) as c:
            with pytest.raises(CloudUnavailableError, match="timed out"):
                await c.call("/x")
        never.set()


def test_a_proxy_in_the_environment_goes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = CloudClient("https://connect.getseam.com", "k")
    assert isinstance(proxied._poster, HttpxPoster)
    monkeypatch.setenv("NO_PROXY", "connect.getseam.com")
    direct = CloudClient("https://connect.getseam.com", "k")
    assert isinstance(direct._poster, Http11)


def test_a_bad_endpoint_is_refused_without_echoing_it() -> None:
    for url in ("ftp://connect.example.com", "https://op:hunter2-pw@connect.example.com"):
        with pytest.raises(ValueError, match="the cloud endpoint") as info:
            Http11(url, {}, 1.0)
        assert "hunter2" not in str(info.value) and "ftp" not in str(info.value)


async def test_a_sized_body_in_small_pieces_is_read_whole() -> None:
    """The body framed by Content-Length lands in one buffer whatever pieces it comes in;
    the head may be cut anywhere too."""
    payload = b'{"items": [' + b",".join(b'"%d"' % i for i in range(20000)) + b"]}"
    answer = _ok(payload)
    cuts = [5, 17, 40, 41, 300, 4096, 70000, len(answer)]

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            start = 0
            for end in cuts:
                writer.write(answer[start:end])
                await writer.drain()
                start = end
        writer.close()

    listening = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        client = Http11(f"http://127.0.0.1:{port}", {}, 5.0)
        try:
            assert (await client.post("/x", b"{}")).content == payload
            assert (await client.post("/x", b"{}")).content == payload  # kept alive
        finally:
            await client.aclose()


async def test_empty_informational_and_overlong_answers(server: Server) -> None:
    """An empty body; a 100 Continue before the answer; an answer followed by bytes nobody
    asked for (its connection is not used again); an HTTP/1.0 answer (not kept either)."""
    answers = {
        1: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        2: b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b'{"n": 2}'),
        3: _ok(b'{"n": 3}') + b"junk",
        4: b'HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\n{"n": 4}',
        5: _ok(b'{"n": 5}'),
    }
    server.answer = lambda n, body: answers[n]
    client = Http11(server.url, {}, 5.0)
    try:
        assert (await client.post("/x", b"{}")).content == b""
        assert (await client.post("/x", b"{}")).content == b'{"n": 2}'
        assert server.connections == 1
        assert (await client.post("/x", b"{}")).content == b'{"n": 3}'
        assert (await client.post("/x", b"{}")).content == b'{"n": 4}'
        assert (await client.post("/x", b"{}")).content == b'{"n": 5}'
    finally:
        await client.aclose()
    assert server.connections == 3  # a new one after 3 (junk), and after 4 (HTTP/1.0)
    assert len(server.requests) == 5  # each sent once


def test_the_daemon_does_not_load_httpx_without_a_proxy() -> None:
    """httpx and its dependencies are a few MiB resident: loaded only for a proxy or a test."""
    code = "import sys, gateway.daemon, gateway.cli; print('httpx' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False", out.stderr


async def test_errors_through_httpx_are_the_clients_unavailable_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(refuse)
    async with CloudClient("http://cloud.test", "k", max_retries=0, transport=transport) as c:
        with pytest.raises(CloudUnavailableError, match="/x: ConnectError: refused"):
            await c.call("/x")
