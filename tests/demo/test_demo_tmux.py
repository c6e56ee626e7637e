"""The demo as a person meets it, in a real terminal: ``lockgate-sim demo`` in tmux, 80 columns
by 24 rows.

The first screen comes up (the time from the command to it is printed), the walk-through runs
in the live view and ends with the ``lockgate ctl`` line, wider than the terminal and so
wrapped over rows that end in a backslash; those rows pasted into a shell as shown unlock a
door of the running demo, and Ctrl-C ends it leaving no process of its own behind (the broker
included). tmux is a Debian package that ``scripts/bootstrap.sh`` installs.

The terminal is a pane of a private tmux server (:mod:`bench.terminal`, shared with the bench
that times the first screen through ``scripts/demo.sh`` on a fresh copy of the checkout).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench.terminal import Tmux
from tests.demo.test_demo import alive, command, env


def command_shown(screen: str) -> str:
    """The ``lockgate ctl`` command as a person selects it on the screen: from the word
    ``lockgate`` to the end of the last of its rows (each row but the last ends in ``\\``)."""
    rows = screen.splitlines()
    at = next(i for i, row in enumerate(rows) if "lockgate ctl " in row)
    first = rows[at].split()
    start = next(w for w in first if Path(w).name == "lockgate")
    shown = [rows[at][rows[at].index(start) :].rstrip()]
    while shown[-1].endswith("\\"):
        shown.append(rows[at + len(shown)].rstrip())
    return "\n".join(shown)


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


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_demo_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    tmux = Tmux()
    t0 = time.monotonic()
    await tmux.start(["env", f"PYTHONPATH={env()['PYTHONPATH']}", *command()])
    try:
        await tmux.until("Lockgate demo", 60)
        first_screen = time.monotonic() - t0
        with capsys.disabled():
            print(f"\ndemo in tmux: first screen {first_screen:.1f} s after the command")
        pane_pid = await tmux.pane_pid()
        screen = await tmux.until("lockgate ctl ", 120)
        assert "✗" not in screen and "problem(s)" not in screen, screen
        ours = {pane_pid, *descendants(pane_pid)}
        assert len(ours) >= 2, "the demo's broker should be running below it"
        pasted = command_shown(screen)
        assert "\\\n" in pasted, f"wider than 80 columns, it should be wrapped:\n{pasted}"
        ctl = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            pasted,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env(),
        )
        async with asyncio.timeout(30):
            out, err = await ctl.communicate()
        assert ctl.returncode == 0, pasted + "\n" + out.decode() + err.decode()
        assert '"unlocked"' in out.decode() + err.decode()

        await tmux.keys("C-c")
        await tmux.until_ended(30)
        final = await tmux.screen()
        assert "stopped on SIGINT: everything is closed" in final, final
        assert "Traceback" not in final, final
        stray = {pid for pid in ours if alive(pid)}
        assert not stray, f"left running after Ctrl-C: {stray}"
    finally:  # a private socket: the user's own tmux is never touched
        await tmux.kill_server()
