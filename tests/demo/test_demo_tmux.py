"""The demo as a person meets it, in a real terminal: ``lockgate-sim demo`` in tmux.

The first screen comes up (the time from the command to it is printed), the walk-through runs
in the live view and ends with the ``lockgate ctl`` line, that line pasted as shown unlocks a
door of the running demo, and Ctrl-C ends it leaving no process of its own behind (the broker
included). tmux is a Debian package that ``scripts/bootstrap.sh`` installs.

tmux has no event for "the screen now shows X": the test reads the pane (``capture-pane``)
every few tenths of a second, bounded by a timeout; that is a poll of another process's
screen, not a sleep standing in for an event of ours.
"""

from __future__ import annotations

import asyncio
import shlex
import time
import uuid
from pathlib import Path

import pytest

from tests.demo.test_demo import command, env

POLL_S = 0.2


class Tmux:
    def __init__(self) -> None:
        self.socket = f"lockgate-test-{uuid.uuid4().hex[:8]}"

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

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-J", "-t", "demo")

    async def until(self, text: str, within: float) -> str:
        async with asyncio.timeout(within):
            while True:
                screen = await self.screen()
                if text in screen:
                    return screen
                await asyncio.sleep(POLL_S)

    async def until_ended(self, within: float) -> None:
        async with asyncio.timeout(within):
            while True:
                dead = await self.run("display-message", "-p", "-t", "demo", "#{pane_dead}")
                if dead.strip() == "1":
                    return
                await asyncio.sleep(POLL_S)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc's children lists)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        one = todo.pop()
        for task in Path(f"/proc/{one}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_demo_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    tmux = Tmux()
    # the pane's own size, not the one pytest's terminal exported
    pythonpath = f"PYTHONPATH={env()['PYTHONPATH']}"
    line = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", pythonpath])
    line += " " + shlex.join(command())
    t0 = time.monotonic()
    await tmux.run(
        "new-session", "-d", "-s", "demo", "-x", "240", "-y", "60", "-e", "TERM=xterm", line
    )
    try:
        await tmux.run("set-option", "-t", "demo", "remain-on-exit", "on")
        await tmux.until("Lockgate demo", 60)
        first_screen = time.monotonic() - t0
        with capsys.disabled():
            print(f"\ndemo in tmux: first screen {first_screen:.1f} s after the command")
        pane_pid = int(await tmux.run("display-message", "-p", "-t", "demo", "#{pane_pid}"))
        screen = await tmux.until(" ctl --config ", 120)
        assert "✗" not in screen and "problem(s)" not in screen, screen
        ours = {pane_pid, *descendants(pane_pid)}
        assert len(ours) >= 2, "the demo's broker should be running below it"
        shown = next(row for row in screen.splitlines() if " ctl --config " in row)
        words = shlex.split(shown)
        words = words[next(i for i, w in enumerate(words) if Path(w).name == "lockgate") :]
        ctl = await asyncio.create_subprocess_exec(
            *words, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env()
        )
        async with asyncio.timeout(30):
            out, err = await ctl.communicate()
        assert ctl.returncode == 0, shown + "\n" + out.decode() + err.decode()
        assert '"unlocked"' in out.decode() + err.decode()

        await tmux.run("send-keys", "-t", "demo", "C-c")
        await tmux.until_ended(30)
        final = await tmux.screen()
        assert "stopped on SIGINT: everything is closed" in final, final
        assert "Traceback" not in final, final
        stray = {pid for pid in ours if alive(pid)}
        assert not stray, f"left running after Ctrl-C: {stray}"
    finally:  # a private socket: the user's own tmux is never touched
        await tmux.run("kill-server")
