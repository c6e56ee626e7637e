"""Fixtures for the deployment tests: a service manager's notify socket, a site on disk."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.models import AccessMethod, CloudSnapshot, Grant
from gateway.secrets import SecretRef
from gateway.store.crypto import KEY_BYTES
from gateway.store.store import Store

REPO = Path(__file__).resolve().parents[2]

Message = dict[str, str]


class NotifySocket:
    """What systemd listens on: an ``AF_UNIX`` datagram socket. Messages are parsed into
    ``{KEY: VALUE}`` and kept, with the monotonic time they arrived, in :attr:`seen`."""

    def __init__(self, address: str) -> None:
        self.address = address
        """As written in ``$NOTIFY_SOCKET`` (``@name`` for the abstract namespace)."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        bind_to = "\0" + address[1:] if address.startswith("@") else address
        self.sock.bind(bind_to)
        self.sock.setblocking(False)
        self.seen: list[tuple[float, Message]] = []

    def close(self) -> None:
        self.sock.close()

    async def receive(self) -> Message:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        message = parse(data)
        self.seen.append((time.monotonic(), message))
        return message

    async def until(self, predicate: Callable[[Message], bool], within: float) -> Message:
        """The first message (from now on) that satisfies ``predicate``."""
        async with asyncio.timeout(within):
            while True:
                message = await self.receive()
                if predicate(message):
                    return message

    @property
    def status(self) -> str:
        """The last STATUS= received (systemd shows it until the next one)."""
        return next((m["STATUS"] for _, m in reversed(self.seen) if "STATUS" in m), "")

    async def status_until(self, predicate: Callable[[str], bool], within: float) -> str:
        if not predicate(self.status):
            await self.until(lambda m: "STATUS" in m and predicate(m["STATUS"]), within)
        return self.status

    def queued(self) -> list[Message]:
        """Whatever has been sent and not received yet (sending is synchronous, so after a
        call returns its datagram is already here)."""
        out: list[Message] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            out.append(parse(data))
            self.seen.append((time.monotonic(), out[-1]))


def parse(data: bytes) -> Message:
    fields = [line for line in data.decode().split("\n") if line]
    return dict(line.split("=", 1) for line in fields)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket path must fit in 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="lg-") as d:
        yield Path(d)


@pytest.fixture
async def notify_socket(short_dir: Path) -> AsyncIterator[NotifySocket]:
    listener = NotifySocket(str(short_dir / "notify"))
    yield listener
    listener.close()


@dataclass
class Site:
    """A gateway's files as the install script lays them out, under a temporary root."""

    root: Path

    @property
    def credentials(self) -> Path:
        return self.root / "credentials"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def db(self) -> Path:
        return self.state / "lockgate.db"

    @property
    def config(self) -> Path:
        return self.root / "lockgate.toml"

    def lock_flash(self, lock_id: str) -> Path:
        return self.state / f"{lock_id}.json"

    def write_secrets(self, api_key: str) -> None:
        self.credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, value in (("seam-api-key", api_key.encode()), ("store-key", _new_key())):
            fd = os.open(self.credentials / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)

    def write_config(
        self, endpoint: str, locks: dict[str, tuple[str, ...]], driver: str = "sim"
    ) -> None:
        """Secrets as systemd credentials, one simulated lock per entry (id -> space ids)."""
        text = f"""
gateway_id = "test-gw"
control_socket = "{self.db.parent / "control.sock"}"

[cloud]
endpoint = "{endpoint}"
api_key = {{ credential = "seam-api-key" }}
poll_interval_s = 1
request_timeout_s = 2
max_retries = 0

[store]
path = "{self.db}"
key = {{ credential = "store-key" }}
"""
        for lock_id, spaces in locks.items():
            text += f"""
[[locks]]
id = "{lock_id}"
space_ids = {list(spaces)!r}
[locks.driver]
type = "{driver}"
state_file = "{self.lock_flash(lock_id)}"
"""
        self.config.write_text(text.replace("'", '"'))

    def env(self) -> dict[str, str]:
        return {"CREDENTIALS_DIRECTORY": str(self.credentials)}

    def open_store(self) -> Store:
        return Store.open(self.db, SecretRef(file=self.credentials / "store-key"))

    def seed(self, grants: list[Grant], methods: list[AccessMethod]) -> None:
        """Put cloud data into the store before the gateway starts, as a past sync would."""
        with self.open_store() as store:
            store.cloud.apply_snapshot(
                CloudSnapshot(grants, methods, [], {}, []), datetime.now(UTC)
            )


def _new_key() -> bytes:
    return os.urandom(KEY_BYTES)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    s.state.mkdir()
    return s


def unused_port() -> int:
    """A local port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
