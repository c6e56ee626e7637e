"""Every ``bench/bench_*.py`` runs to the end at its ``--quick`` sizes, started as the README
says (``python -m bench.<name>`` from the repository root) (so benches do not rot:
one that hung on a changed gateway API was found this way). Smoke only: nothing is timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.harness import SCRIPTS, run_bench


def test_there_are_benches_to_run() -> None:
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_runs_quick(script: Path) -> None:
    out = run_bench("-m", f"bench.{script.stem}", "--quick", timeout=110)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip(), out.stderr[-3000:]
