"""Run a bench the way a person does, from the repository root, and keep what it printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "bench").glob("bench_*.py"))


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python *args`` from the repository root with nothing added to the import path (the
    suite's own ``PYTHONPATH``, if any, is dropped): what the README's command does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
