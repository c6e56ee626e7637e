"""Run ``lockgate run`` as a child process and await lines of its log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

LOCKGATE = Path(sys.executable).with_name("lockgate")


class DaemonProcess:
    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        self._config = config
        self._env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self._new = asyncio.Condition()
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            str(LOCKGATE),
            "run",
            "--config",
            str(self._config),
            "--log-level",
            "DEBUG",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
        )
        self._reader = asyncio.create_task(self._read(), name="daemon-log")
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            async with self._new:
                self.lines.append(line.decode(errors="replace").rstrip())
                self._new.notify_all()
        async with self._new:
            self._new.notify_all()

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        return sum(1 for line in self.lines if rx.search(line))

    async def wait_for_line(self, pattern: str, *, times: int = 1, within: float = 30.0) -> None:
        """Until ``times`` log lines match ``pattern``; fails with the log tail after ``within``."""
        try:
            async with asyncio.timeout(within):
                await self._wait_for_line(pattern, times)
        except TimeoutError:
            tail = "\n".join(self.lines[-40:])
            raise AssertionError(f"no {pattern!r} within {within}s; log tail:\n{tail}") from None

    async def _wait_for_line(self, pattern: str, times: int) -> None:
        def done() -> bool:
            exited = self._reader is not None and self._reader.done()
            if exited and self.count(pattern) < times:
                raise AssertionError(
                    f"daemon exited before {pattern!r}; log tail:\n" + "\n".join(self.lines[-30:])
                )
            return self.count(pattern) >= times

        async with self._new:
            await self._new.wait_for(done)

    def kill(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        await self.wait_exit()
