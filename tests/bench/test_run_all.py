"""``python -m bench.run_all`` (the README's figures table) runs, and prints every row of the
table with a ratio. At ``--quick`` sizes: what is checked is the harness, not any figure."""

from __future__ import annotations

import re

import pytest

from tests.bench.harness import run_bench

ROWS = [
    "offline decision (no write)",
    "recorded decision (durable)",
    "sync + plan,",
    "  of which storage alone",
    "hourly full resync of that site (unchanged)",
    "hourly full resync of that site (1% of grants changed)",
    "peak RSS for that sync",
    "daemon, ",
    "  peak RSS",
    "  time until every lock is in line",
    "  start -> ready",
    "start -> ready, ",
    "idle CPU, ",
    "serial push, ",
    "BLE push, ",
    "MQTT `status`",
    "MQTT signed unlock",
]
RATIO = re.compile(r"\b\d+(\.\d+)?x\b")


@pytest.mark.timeout(180)
def test_run_all_quick_prints_every_row_with_a_ratio() -> None:
    out = run_bench("-m", "bench.run_all", "--quick", timeout=170)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = out.stdout.split("| measure | floor or goal | now | ratio |", 1)
    assert len(table) == 2, out.stdout[-3000:]
    rows = [line for line in table[1].splitlines() if line.startswith("| ") and "---" not in line]
    cells = [[c.strip(" ") for c in line.strip("|").split(" | ")] for line in rows]
    measures = [c[0] for c in cells]
    assert len(measures) == len(ROWS), measures
    for expected, got in zip(ROWS, measures, strict=True):
        assert got.startswith(expected.strip()) or got.startswith(expected), (expected, got)
    machine = out.stdout.splitlines()[0]
    assert machine.startswith("machine: ") and " cores, " in machine and "Python 3." in machine
    for measure, _goal, now, ratio in cells:
        assert now and now != "-", measure
        assert RATIO.search(ratio), (measure, ratio)
