"""Time from the README's demo command to the demo's first screen, on a fresh copy of the
checkout (no ``.venv``), in a real terminal (tmux, 80 x 24).

Issue 13's goal: the first screen within 30 s of the command on a machine where the Debian
packages are already present. Three runs of ``scripts/demo.sh`` in the same copy, each ended
with Ctrl-C once its first screen shows:

1. fresh: no venv, empty package caches (pip's and uv's, private to this run);
2. fresh, warm caches: the venv removed again, the caches of run 1 kept;
3. venv present: the floor, what the demo itself takes (bootstrap then finds nothing to do).

Printed: each time, the load average beside it, and each fresh run as a ratio to the floor.
Run from the repository root: ``.venv/bin/python -m bench.demo_first_screen [--cold-only]``
(``--cold-only``: runs 1 and 3). Needs tmux, the Debian packages bootstrap would install
(mosquitto), and PyPI; it creates a venv twice (~10 s each here).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.terminal import Tmux

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 30.0
FIRST_SCREEN = "Lockgate demo"
WITHIN_S = 300.0
NOT_COPIED = shutil.ignore_patterns(
    ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".git"
)


def fresh_copy(dest: Path) -> None:
    """The checkout's files as a fresh clone has them: tracked and new ones, none ignored."""
    try:
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=NOT_COPIED, symlinks=True)
        return
    for name in sorted(set(listed.decode().split("\0")) - {""}):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def first_screen(checkout: Path, env: dict[str, str]) -> float:
    """Seconds from ``scripts/demo.sh`` to the first screen; then Ctrl-C, awaited."""
    tmux = Tmux()
    t0 = time.monotonic()
    settings = [f"{k}={v}" for k, v in env.items()]
    argv = ["env", "-u", "PYTHONPATH", "-u", "VIRTUAL_ENV", *settings, "scripts/demo.sh"]
    await tmux.start(argv, cwd=str(checkout))
    try:
        try:
            await tmux.until(FIRST_SCREEN, WITHIN_S)
        except TimeoutError:
            raise SystemExit(
                f"no first screen after {WITHIN_S:.0f} s:\n{await tmux.screen()}"
            ) from None
        took = time.monotonic() - t0
        await tmux.keys("C-c")
        await tmux.until_ended(60)
        final = await tmux.screen()
        if "everything is closed" not in final:
            raise SystemExit(f"the demo did not end cleanly on Ctrl-C:\n{final}")
        return took
    finally:
        await tmux.kill_server()


async def main(cold_only: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="lockgate-demo-bench-") as tmp:
        checkout, caches = Path(tmp) / "checkout", Path(tmp) / "caches"
        fresh_copy(checkout)
        env = {"PIP_CACHE_DIR": str(caches / "pip"), "UV_CACHE_DIR": str(caches / "uv")}
        runs: list[tuple[str, float, str]] = []
        took = await first_screen(checkout, env)
        runs.append(("fresh copy, no venv, empty pip and uv caches", took, loadavg()))
        if not cold_only:
            shutil.rmtree(checkout / ".venv")
            took = await first_screen(checkout, env)
            runs.append(("fresh copy, no venv, warm caches", took, loadavg()))
        floor = await first_screen(checkout, env)
        print(f"demo first screen through scripts/demo.sh (goal: within {GOAL_S:.0f} s)")
        for what, took, load in runs:
            verdict = "within" if took <= GOAL_S else "OVER"
            print(
                f"  {what}: {took:.1f} s ({verdict} the goal), {took / floor:.1f}x the floor"
                f"  [loadavg {load}]"
            )
        print(f"  floor, venv present: {floor:.1f} s  [loadavg {loadavg()}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-only", action="store_true", help="skip the warm-cache run")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is not installed: scripts/bootstrap.sh installs it")
    asyncio.run(main(args.cold_only))
