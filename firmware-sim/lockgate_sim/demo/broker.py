"""A private Mosquitto for the demo: generated config, a free local port, its own directory.

The same approach as the tests' broker (``tests/mqtt/broker.py``): the Debian package is
installed by ``scripts/bootstrap.sh``; the demo never uses the system broker. Readiness is
awaited by connecting; the broker's log goes to ``mosquitto.log`` beside its config.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
HOST = "127.0.0.1"


class BrokerUnavailable(RuntimeError):
    """Mosquitto is not installed or would not start; the message says which."""


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.host = HOST
        self.port = port or free_port()
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto would drop to the user "mosquitto", who cannot read our
            # private directory.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    async def start(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerUnavailable("mosquitto is not installed (scripts/bootstrap.sh installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(self.config_path),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,  # Ctrl-C in the terminal is ours to pass on, in order
            )
        finally:
            os.close(log_fd)
        try:
            await self._until_accepting()
        except BaseException:
            await self.stop()
            raise

    async def _until_accepting(self) -> None:
        assert self._proc is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    if self._proc.returncode is not None:
                        raise BrokerUnavailable(f"mosquitto exited at start: {self._log_tail()}")
                    try:
                        _, writer = await asyncio.open_connection(self.host, self.port)
                    except OSError:
                        await asyncio.sleep(0.005)  # polling a port that is not open yet
                        continue
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                    return
        except TimeoutError:
            raise BrokerUnavailable(f"mosquitto did not accept within {START_TIMEOUT_S}s") from None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-500:]
        except OSError:
            return ""

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
