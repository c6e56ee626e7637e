"""bench/bench_osdp.py runs (a few cards): the figures are its own, the run is the suite's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_runs_and_prints_its_ratio() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_osdp.py"), "--cards", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "libosdp alone (floor)" in out
    assert "gateway / floor: median" in out
    assert "decision median" in out
