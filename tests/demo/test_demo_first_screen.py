"""The README's demo command from a fresh copy of the checkout (no venv), timed to its first
screen by ``bench/demo_first_screen.py`` (``--cold-only``: one fresh run with empty package
caches, then the floor with the venv present). The figures are printed, not asserted; the test
checks that the road works: ``scripts/demo.sh`` sets up, shows its first screen, ends on Ctrl-C.

It creates one venv (about 10 s on a 2-core machine; it downloads from PyPI, as the bootstrap
that ran the suite did).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(660)
async def test_the_demo_command_from_a_fresh_copy(capsys: pytest.CaptureFixture[str]) -> None:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.demo_first_screen",
        "--cold-only",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(640):
        out_b, _ = await proc.communicate()
    out = out_b.decode()
    with capsys.disabled():
        print("\n" + out)
    assert proc.returncode == 0, out
    assert "fresh copy, no venv, empty pip and uv caches: " in out, out
    assert "floor, venv present: " in out, out
