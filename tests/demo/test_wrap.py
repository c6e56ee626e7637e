"""The live view's story wraps instead of being cut at the terminal's edge; the command to
paste wraps so that its rows, pasted into a real shell, run as that one command."""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import time

import pytest
from lockgate_sim.demo.view import LiveView
from lockgate_sim.demo.wrap import Paste, narration_rows, wrap_command, wrap_prose

WORDS = [
    "/home/someone/src/lockgate/.venv/bin/lockgate",
    "ctl",
    "--config",
    "/tmp/lockgate-demo-kydlpvrc/operator/ctl.toml",
    "unlock",
    "lock_id=front",
    "a word with spaces",  # quoted by shlex.join: never broken inside
]
LEAD = "   123.4s    "


async def as_the_shell_reads(pasted: str) -> list[str]:
    """The words bash makes of ``pasted`` (as typed after a command name)."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "printf '%s\\0' " + pasted,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().split("\0")[:-1]


@pytest.mark.parametrize("width", [40, 52, 60, 80, 100, 200])
async def test_a_wrapped_command_pastes_as_the_same_words(width: int) -> None:
    rows = wrap_command(LEAD, shlex.join(WORDS), width, len(LEAD))
    assert all(len(row) <= width for row in rows), rows
    assert all(row.endswith(" \\") or row.endswith("\\") for row in rows[:-1]), rows
    assert (len(rows) == 1) == (len(LEAD + shlex.join(WORDS)) + 2 <= width)
    pasted = "\n".join([rows[0][len(LEAD) :], *rows[1:]])
    assert await as_the_shell_reads(pasted) == WORDS


async def test_a_word_longer_than_a_row_is_broken_where_the_shell_joins_it() -> None:
    words = ["/very/long/path/" + "x" * 70 + "/lockgate", "ctl", "unlock"]
    rows = wrap_command(LEAD, shlex.join(words), 40, len(LEAD))
    assert all(len(row) <= 40 for row in rows), rows
    assert await as_the_shell_reads("\n".join([rows[0][len(LEAD) :], *rows[1:]])) == words


def test_prose_wraps_under_its_text_and_keeps_every_word() -> None:
    text = "try it: unlock the front door as the demo's operator, " * 3
    rows = wrap_prose(LEAD + text, 60, len(LEAD))
    assert len(rows) > 1 and all(len(row) <= 60 for row in rows)
    assert all(row.startswith(" " * len(LEAD)) for row in rows[1:])
    assert " ".join(row.strip() for row in rows).split() == (LEAD + text).split()


def test_only_a_paste_wraps_as_a_command() -> None:
    said = "  " + shlex.join(WORDS)
    assert narration_rows(LEAD, Paste(said), 80)[0].endswith(" \\")
    assert not any(row.endswith("\\") for row in narration_rows(LEAD, said, 80))


def test_the_live_view_shows_a_long_command_whole_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    out = io.StringIO()
    view = LiveView(out, time.monotonic(), color=False)
    view.say("walk-through done in 70 s: every step went as expected")
    view.say(Paste("  " + shlex.join(WORDS)))
    frame = out.getvalue().rsplit("\x1b[H", 1)[1]  # the last screen drawn
    rows = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", row) for row in frame.split("\n")]
    assert all(len(row) <= 80 for row in rows), rows
    first = next(i for i, row in enumerate(rows) if WORDS[0] in row)
    shown = [rows[first][rows[first].index(WORDS[0]) :]]
    while shown[-1].endswith("\\"):
        shown.append(rows[first + len(shown)])
    assert len(shown) > 1, "wider than 80 columns: it must take more than one row"
    assert shlex.split(re.sub(r"\\\n", "", "\n".join(shown))) == WORDS
    view.close()
    assert shlex.join(WORDS) in out.getvalue().rsplit("\x1b[?1049l", 1)[1]
