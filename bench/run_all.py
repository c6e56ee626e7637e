"""The whole table of issue 15 in one run, each figure beside its floor measured in the same run
(or, where the issue sets an absolute goal, beside that goal).

Run from the repository root: ``.venv/bin/python -m bench.run_all [--quick]``
(``--quick``: 10,000 grants for the daemon row instead of 50,000). The serial, BLE and MQTT
rows come from their own scripts, run as child processes; their last lines are printed as is.
Takes several minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import bench_daemon, bench_sync
from bench.bench_validator import build
from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig, ValidatorConfig
from gateway.events import AccessEvent
from gateway.lockout import LockoutPolicy
from gateway.planner import LockScope
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache

ROWS: list[tuple[str, str, str, str]] = []


def row(measure: str, goal: str, now: str, ratio: str) -> None:
    ROWS.append((measure, goal, now, ratio))
    print(f"  {measure} | {goal} | {now} | {ratio}", flush=True)


def decisions(tmp: Path) -> None:
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = FakeClock(t)
    store = Store.open(tmp / "db", SecretRef(file=tmp / "key"))
    pins = build(store, 100_000, t)
    scopes = {
        f"lock{i}": LockScope(f"lock{i}", frozenset({f"s{i}"}), frozenset(), frozenset())
        for i in range(20)
    }
    cfg = TimeConfig()
    validator = Validator(
        store,
        ViewCache(store).current,
        scopes,
        clock,
        TimeTrust(clock, store.meta, cfg, kernel=lambda: True),
        cfg,
        LockoutPolicy(
            store.lockouts, ValidatorConfig(lockout_failures=10**9, site_lockout_failures=10**9)
        ),
    )
    rng = random.Random(1)
    validator.judge(CredentialKind.CODE, pins[0], "lock0")  # build the view

    def timed(n: int, recorded: bool) -> list[float]:
        lat = []
        for _ in range(n):
            i = rng.randrange(len(pins))
            pin = pins[i] if rng.random() < 0.9 else b"99999999"
            lock = f"lock{(i // 2) % 20}"
            t0 = time.perf_counter()
            if recorded:
                validator.decide(CredentialKind.CODE, pin, lock)
            else:
                validator.judge(CredentialKind.CODE, pin, lock)
            lat.append(time.perf_counter() - t0)
        return lat

    lat = timed(20_000, False)
    rate = len(lat) / sum(lat)
    p99 = statistics.quantiles(lat, n=100)[98] * 1e6
    row(
        "offline decision (no write), 100k credentials",
        ">= 200k/s, p99 <= 20 us",
        f"{rate / 1000:.1f}k/s, p99 {p99:.0f} us",
        f"{200_000 / rate:.1f}x the goal's time per decision, p99 {p99 / 20:.1f}x",
    )
    lat = timed(2_000, True)
    per = sum(lat) / len(lat)
    # The floor: the same outbox rows, 64 per commit at synchronous=FULL, same store.
    events = [
        AccessEvent(AccessEvent.new_id(), t, "access_denied", "lock0", "gateway", "code")
        for _ in range(64 * 30)
    ]
    t0 = time.perf_counter()
    for k in range(0, len(events), 64):
        store.outbox.add(events[k : k + 64])
    floor = (time.perf_counter() - t0) / len(events)
    row(
        "recorded decision (durable)",
        f"group commit, 64 rows a FULL commit: {floor * 1e6:.1f} us a row (this run)",
        f"{1 / per:,.0f}/s ({per * 1e6:.0f} us each, one FULL commit per decision)",
        f"{per / floor:.1f}x",
    )
    store.close()


def isolated(fn: Callable[..., dict[str, float]], *args: int) -> dict[str, float]:
    """Run a measurement in a fresh process, so its peak RSS is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def sync_rows() -> None:
    r = isolated(bench_sync.measure, 10_000, 50)
    row(
        "sync + plan, 10k grants x 3 methods, 50 locks, gateway CPU",
        f"<= 2x json.loads of the same pages ({r['floor_s']:.2f} s this run)",
        f"{r['cpu_s']:.2f} s",
        f"{r['cpu_s'] / r['floor_s']:.1f}x the floor",
    )
    row(
        "peak RSS for that sync",
        "<= 150 MB",
        f"{r['rss_mib']:.0f} MiB",
        f"{r['rss_mib'] * 1.048576 / 150:.2f}x the goal",
    )


def daemon_rows(grants: int) -> None:
    r = isolated(bench_daemon.measure, grants, 20)
    row(
        f"daemon, {grants:,} grants on 20 simulated locks: longest loop stall during full sync",
        "<= 50 ms",
        f"{r['sync_stall_ms']:.0f} ms (whole run {r['stall_ms']:.0f} ms)",
        f"{r['sync_stall_ms'] / 50:.1f}x the goal",
    )
    row(
        "  peak RSS",
        "<= 200 MB",
        f"{r['rss_mib']:.0f} MiB",
        f"{r['rss_mib'] * 1.048576 / 200:.2f}x the goal",
    )
    row("  time until every lock is in line", "-", f"{r['inline_s']:.0f} s", "-")
    row(
        "  start -> ready (20 locks, empty store)",
        "<= 1 s",
        f"{r['ready_s']:.2f} s",
        f"{r['ready_s']:.2f}x the goal",
    )


def script_rows() -> None:
    env = {**os.environ, "PYTHONPATH": f".{os.pathsep}firmware-sim"}
    scripts = {
        "bench/bench_serial.py": [],
        "bench/bench_ble.py": [],
        # a development box's clock is often not NTP-synchronised: unlocks would be refused
        "bench/bench_mqtt.py": ["--stub-kernel-clock"],
    }
    for script, extra in scripts.items():
        print(f"== {script}", flush=True)
        try:
            out = subprocess.run(
                [sys.executable, script, *extra], capture_output=True, text=True, timeout=900,
                env=env, check=False,
            )
            text = out.stdout.strip() or out.stderr.strip()
            print("\n".join(text.splitlines()[-6:]), flush=True)
        except subprocess.TimeoutExpired:
            print(f"{script}: did not finish within 900 s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-scripts", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        decisions(Path(d))
    sync_rows()
    daemon_rows(10_000 if args.quick else 50_000)
    if not args.skip_scripts:
        script_rows()
    print("\n| measure | floor or goal | now | ratio |\n|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
