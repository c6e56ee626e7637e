"""A program in a real terminal: a pane of a private tmux server, read as a person sees it.

Used by the demo's tmux test and by :mod:`bench.demo_first_screen`. tmux has no event for "the
screen now shows X": :meth:`Tmux.until` reads the pane (``capture-pane``) every few tenths of a
second, bounded by a timeout; that is a poll of another process's screen, not a sleep standing
in for an event of ours. The server has a socket of its own, so the user's tmux is never
touched; :meth:`Tmux.kill_server` ends it.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid

POLL_S = 0.2


class Tmux:
    def __init__(self, session: str = "demo") -> None:
        self.socket = f"lockgate-test-{uuid.uuid4().hex[:8]}"
        self.session = session

    async def run(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux",
            "-L",
            self.socket,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"tmux {args}: {err.decode()}"
        return out.decode()

    async def start(
        self, argv: list[str], *, columns: int = 80, rows: int = 24, cwd: str | None = None
    ) -> None:
        """``argv`` in a new pane of ``columns`` x ``rows`` (its own size: ``COLUMNS`` and
        ``LINES`` are unset), kept on the screen after it ends."""
        line = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *argv])
        where = ["-c", cwd] if cwd is not None else []
        await self.run(
            "new-session", "-d", "-s", self.session, "-x", str(columns), "-y", str(rows),
            "-e", "TERM=xterm", *where, line,
        )  # fmt: skip
        await self.run("set-option", "-t", self.session, "remain-on-exit", "on")

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-J", "-t", self.session)

    async def pane_pid(self) -> int:
        return int(await self.run("display-message", "-p", "-t", self.session, "#{pane_pid}"))

    async def keys(self, *keys: str) -> None:
        await self.run("send-keys", "-t", self.session, *keys)

    async def until(self, text: str, within: float) -> str:
        """The screen, once it shows ``text``; TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            while True:
                screen = await self.screen()
                if text in screen:
                    return screen
                await asyncio.sleep(POLL_S)

    async def until_ended(self, within: float) -> None:
        """Return once the pane's program has ended."""
        async with asyncio.timeout(within):
            while True:
                dead = await self.run("display-message", "-p", "-t", self.session, "#{pane_dead}")
                if dead.strip() == "1":
                    return
                await asyncio.sleep(POLL_S)

    async def kill_server(self) -> None:
        await self.run("kill-server")
