"""A private Mosquitto for the tests, the bench and the demo: generated config, a free port,
persistence in a temporary directory, started and stopped as an async context manager.

Readiness is awaited by connecting (2 ms between tries; it takes 6-11 ms). Mosquitto logs to
stderr, which goes to ``log_path`` so a failing test can show it. The broker is tethered
(:mod:`lockgate_sim.tether`): it gets SIGTERM when the process that started it dies, even by
SIGKILL, so a killed demo or test run leaves no broker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from lockgate_sim.tether import tethered

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


class BrokerUnavailable(RuntimeError):
    """Mosquitto is not installed or would not start; the message says which."""


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise BrokerUnavailable(
            "mosquitto is not installed: apt-get install -y mosquitto mosquitto-clients "
            "(.ci/run does this on a fresh machine)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file, made by ``mosquitto_passwd`` as an operator would."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    for i, (user, password) in enumerate(users.items()):
        flags = ["-c", "-b"] if i == 0 else ["-b"]
        # -b takes the password on the command line: fine for a test broker's throwaway users.
        subprocess.run(  # noqa: S603
            [tool, *flags, str(path), user, password], check=True, capture_output=True
        )
    path.chmod(0o600)
    return path


@dataclass(frozen=True, slots=True)
class BrokerTls:
    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        tls: BrokerTls | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        extra_config: str = "",
        include_dir: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls = tls
        self.password_file = password_file
        self.acl_file = acl_file
        self.extra_config = extra_config
        self.include_dir = include_dir
        """A Debian-style ``conf.d``: its files define the listeners (``port`` on ``host`` must
        be one of them), logins and ACL; this class then writes only what Debian's main
        ``mosquitto.conf`` holds (persistence, logging) and the ``include_dir`` line."""
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.data_dir = workdir / "data"
        self._proc: asyncio.subprocess.Process | None = None
        self._log: int | None = None
        self.starts = 0

    def config_text(self) -> str:
        lines: list[str] = []
        if self.include_dir is None:
            lines += [
                f"listener {self.port} {self.host}",
                f"allow_anonymous {'false' if self.password_file else 'true'}",
                "set_tcp_nodelay true",
                # An offline persistent consumer may need more than the default 1000 queued.
                "max_queued_messages 100000",
            ]
        lines += [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to the user "mosquitto", which cannot read the
            # test's private temporary directory.
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                "tls_version tlsv1.2",
            ]
            if self.tls.require_certificate:
                lines.append("require_certificate true")
        if self.extra_config:
            lines.append(self.extra_config)
        if self.include_dir is not None:
            lines.append(f"include_dir {self.include_dir}")
        return "\n".join(lines) + "\n"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *tethered([mosquitto_binary(), "-c", str(self.config_path)]),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
            )
        finally:
            os.close(log_fd)
        self.starts += 1
        await self._until_accepting()

    async def _until_accepting(self) -> None:
        assert self._proc is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                if self._proc.returncode is not None:
                    raise BrokerUnavailable(f"mosquitto exited at start:\n{self.log_text()}")
                try:
                    _, writer = await asyncio.open_connection(self.host, self.port)
                except OSError:
                    await asyncio.sleep(0.002)
                    continue
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
