"""The whole table of issue 15 in one run, each figure beside its floor measured in the same run
(or, where the issue sets an absolute goal, beside that goal).

Run from the repository root: ``.venv/bin/python -m bench.run_all [--quick]``. Each bench
that starts a daemon or a simulator runs in a fresh process of its own (its peak RSS is its
own). That process is spawned, and a spawned process imports this module again: so the bench
modules are imported where each row is measured, not here, or every process would also hold
the modules of every other bench (measured: 72 MiB resident after importing them all, 54-57
MiB after importing one). ``--quick`` runs every row at tiny sizes in well under a minute: it
shows the harness works (tests/bench runs it), not how fast anything is. The full run takes
several minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import TimeTrust

ROWS: list[tuple[str, str, str, str]] = []


def row(measure: str, goal: str, now: str, ratio: str) -> None:
    ROWS.append((measure, goal, now, ratio))
    print(f"  {measure} | {goal} | {now} | {ratio}", flush=True)


def decisions(tmp: Path, credentials: int, judged: int, recorded: int) -> None:
    """The two decision rows, measured as :mod:`bench.bench_validator` measures them."""
    from bench import bench_validator

    t = datetime.now(UTC).replace(microsecond=0)  # the grants run around the real now
    clock = FakeClock(t)
    store = Store.open(tmp / "db", SecretRef(file=tmp / "key"))
    pins = bench_validator.build(store, credentials, t)
    honest, how = bench_validator.daemon_validator(store)
    f = bench_validator.timed(
        lambda pin, lock: honest.judge(CredentialKind.CODE, pin, lock),
        bench_validator.workload(pins, judged),
    )
    row(
        f"offline decision (no write), {credentials:,} credentials, on the daemon's clock",
        ">= 200k/s, p99 <= 20 us",
        f"{f.rate / 1000:.1f}k/s, p99 {f.p99_us:.0f} us ({how})",
        f"{200_000 / f.rate:.2f}x the goal's time per decision, p99 {f.p99_us / 20:.2f}x",
    )
    v = bench_validator.validator(store, clock, TimeTrust(clock, store.meta, TimeConfig(), _true))
    bench_validator.prepare(v, pins[0])
    r = bench_validator.recorded_rounds(
        v, store, clock, bench_validator.workload(pins, recorded, 2), doors=64
    )
    row(
        "recorded decision (durable), answered once its group commit is done",
        f"group commit, 64 rows a FULL commit: {r.floor * 1e6:.1f} us a row (this run, median "
        f"of {len(r.floors)} measured between the rounds)",
        f"{1 / r.per:,.0f}/s ({r.per * 1e6:.0f} us each: 64 doors at once, "
        f"{r.group:.0f} decisions a commit)",
        f"{r.ratio:.2f}x (median of the rounds' ratios: "
        + ", ".join(f"{x:.2f}" for x in r.ratios)
        + ")",
    )
    store.close()


def _true() -> bool:
    return True


def isolated(fn: Callable[..., dict[str, float]], *args: int) -> dict[str, float]:
    """Run a measurement in a fresh process, so its peak RSS is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def isolated_kw(fn: Callable[..., dict[Any, float]], **kwargs: Any) -> dict[Any, float]:
    """:func:`isolated` with keyword arguments (each bench in a process of its own)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, (), kwargs)


def sync_rows(grants: int, locks: int) -> None:
    from bench import bench_sync

    r = isolated(bench_sync.measure, grants, locks)
    row(
        f"sync + plan, {grants:,} grants x 3 methods, {locks} locks, gateway CPU",
        f"<= 2x json.loads of the same pages ({r['floor_s']:.3g} s this run)",
        f"{r['cpu_s']:.2f} s",
        f"{r['cpu_s'] / r['floor_s']:.1f}x the floor",
    )
    row(
        "  of which storage alone: the same rows inserted bare (one commit, synchronous=FULL)",
        "(a second floor, same run)",
        f"{r['sqlite_s']:.2f} s",
        f"{r['sqlite_s'] / r['floor_s']:.1f}x json.loads",
    )
    for key, label in (("resync_same", "unchanged"), ("resync_changed", "1% of grants changed")):
        row(
            f"hourly full resync of that site ({label}) + plan, gateway CPU",
            f"<= 2x json.loads of its pages ({r[f'{key}_floor_s']:.3g} s this run)",
            f"{r[f'{key}_cpu_s']:.3f} s",
            f"{r[f'{key}_cpu_s'] / r[f'{key}_floor_s']:.1f}x the floor",
        )
    row(
        "peak RSS for that sync",
        "<= 150 MB",
        f"{r['rss_mib']:.0f} MiB",
        f"{r['rss_mib'] * 1.048576 / 150:.2f}x the goal",
    )


def daemon_rows(grants: int, locks: int) -> None:
    from bench import bench_daemon

    r = isolated(bench_daemon.measure, grants, locks)
    row(
        f"daemon, {grants:,} grants on {locks} simulated locks: longest loop stall during full "
        "sync",
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
    row(
        "  time until every lock is in line",
        f"- (the full sync, same run: {r['sync_s']:.1f} s)",
        f"{r['inline_s']:.1f} s",
        f"{r['inline_s'] / r['sync_s']:.1f}x the full sync",
    )
    row(
        f"  start -> ready ({locks} locks, empty store)",
        "<= 1 s",
        f"{r['ready_s']:.2f} s",
        f"{r['ready_s']:.2f}x the goal",
    )


def ready_row(grants: int, locks: int) -> None:
    """The issue's start -> READY row at its own size: 50 locks (a small site, so the figure is
    the start itself, not a sync)."""
    from bench import bench_daemon

    r = isolated(bench_daemon.measure, grants, locks)
    row(
        f"start -> ready, {locks} simulated locks, empty store ({grants:,} grants)",
        "<= 1 s",
        f"{r['ready_s']:.2f} s (every lock in line at {r['inline_s']:.1f} s)",
        f"{r['ready_s']:.2f}x the goal",
    )


def idle_row(locks: int, buses: int, window: float, settle: float | None) -> None:
    from bench import bench_idle

    if settle is None:
        settle = bench_idle.REST_AFTER + 10  # the locks come to rest
    r = isolated_kw(
        bench_idle.measure, locks=locks, buses=buses, window=window, settle=settle
    )
    row(
        f"idle CPU, {locks} serial locks in line (real daemon, {buses} simulated RS-485 buses)",
        "<= 1% of a core",
        f"{100 * r['gateway_cpu']:.2f}% over {r['window_s']:.0f} s (the simulated locks: "
        f"{100 * r['simulator_cpu']:.2f}%, not the gateway's)",
        f"{r['gateway_cpu'] / bench_idle.GOAL:.2f}x the goal",
    )


def serial_row(codes: tuple[int, ...]) -> None:
    from bench import bench_serial

    r = isolated_kw(bench_serial.measure, codes=codes)
    goal = 1000 if 1000 in r else codes[0]
    others = ", ".join(f"{n:,}: {100 * v:.1f}%" for n, v in r.items() if n != goal)
    row(
        f"serial push, {goal:,} codes at 115,200 baud (paced pty)",
        ">= 90% of the wire limit",
        f"{100 * r[goal]:.1f}% of the wire limit" + (f" ({others})" if others else ""),
        f"{0.9 / r[goal]:.2f}x the goal's time",
    )


def ble_row(codes: int) -> None:
    from bench import bench_ble

    r = isolated_kw(bench_ble.measure, codes=codes)
    per = r["round_trips"] / codes
    row(
        f"BLE push, {codes} codes to one commissioned lock (MTU 247)",
        "<= 0.1 GATT round trips per code",
        f"{per:.3f} per code ({r['round_trips']:.0f} round trips, {r['setup']:.0f} link setup;"
        f" table discovered on the air: {r['cold_round_trips'] / codes:.3f})",
        f"{per / 0.1:.2f}x the goal",
    )


def mqtt_rows(rounds: int, per_round: int, warmup: int) -> None:
    from bench import bench_mqtt

    r = isolated_kw(bench_mqtt.measure, rounds=rounds, per_round=per_round, warmup=warmup)
    clock = "" if r["real_kernel"] else "; kernel clock-sync answer stubbed"
    floor = f"bare aiomqtt echo, same broker, same run: median {r['echo']:.3f} ms"
    row(
        "MQTT `status` (v5 request/response, QoS 1)",
        f"<= 1.5x the {floor}",
        f"median {r['status']:.3f} ms, p99 {r['status_p99']:.2f} ms{clock}",
        f"{r['status'] / r['echo']:.2f}x the echo",
    )
    unlock_floor = r["echo"] + r["commit"]
    row(
        "MQTT signed unlock",
        f"<= 2x the echo + one durable commit (its replay record), same run: "
        f"{unlock_floor:.3f} ms",
        f"median {r['unlock']:.3f} ms, p99 {r['unlock_p99']:.2f} ms{clock}",
        f"{r['unlock'] / unlock_floor:.2f}x that floor ({r['unlock'] / r['echo']:.2f}x the echo)",
    )


@dataclass(frozen=True)
class Sizes:
    credentials: int = 100_000
    judged: int = 20_000
    recorded: int = 2_000
    sync_grants: int = 10_000
    sync_locks: int = 50
    daemon_grants: int = 50_000
    daemon_locks: int = 20
    ready_locks: int = 50
    ready_grants: int = 1_000
    idle_locks: int = 50
    idle_buses: int = 5
    idle_window: float = 60.0
    idle_settle: float | None = None
    """``None``: until the locks come to rest (:data:`bench.bench_idle.REST_AFTER` + 10 s)."""
    serial_codes: tuple[int, ...] = (300, 1000, 3000)
    ble_codes: int = 200
    mqtt: tuple[int, int, int] = (5, 200, 50)


QUICK = Sizes(
    credentials=1_000, judged=500, recorded=50, sync_grants=200, sync_locks=5,
    daemon_grants=200, daemon_locks=2, ready_locks=5, ready_grants=50, idle_locks=3,
    idle_buses=1, idle_window=1.0, idle_settle=0.5, serial_codes=(30,), ble_codes=20,
    mqtt=(1, 10, 3),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true",
        help="tiny sizes, well under a minute: checks that every row is measured, not how fast",
    )
    args = ap.parse_args()
    sizes = QUICK if args.quick else Sizes()
    started = time.perf_counter()
    print(f"machine: {machine()}, load average {load()}"
          + (" (--quick: tiny sizes, figures mean nothing)" if args.quick else ""), flush=True)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        decisions(Path(d), sizes.credentials, sizes.judged, sizes.recorded)
    sync_rows(sizes.sync_grants, sizes.sync_locks)
    daemon_rows(sizes.daemon_grants, sizes.daemon_locks)
    ready_row(sizes.ready_grants, sizes.ready_locks)
    idle_row(sizes.idle_locks, sizes.idle_buses, sizes.idle_window, sizes.idle_settle)
    serial_row(sizes.serial_codes)
    ble_row(sizes.ble_codes)
    mqtt_rows(*sizes.mqtt)
    print(f"\n{len(ROWS)} rows in {time.perf_counter() - started:.0f} s; load average {load()}")
    print("\n| measure | floor or goal | now | ratio |\n|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


def machine() -> str:
    """The machine the figures come from, named: CPU model, cores, memory, OS, Python."""
    info = {"model": "", "os": "", "mem": ""}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")) and not info["model"]:
                info["model"] = line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip('"')
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem"] = f"{int(line.split()[1]) / 2**20:.0f} GiB RAM"
    parts = [info["model"] or platform.machine(), f"{os.cpu_count()} cores", info["mem"],
             info["os"] or platform.platform(), f"Python {sys.version.split()[0]}"]
    return ", ".join(p for p in parts if p)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
