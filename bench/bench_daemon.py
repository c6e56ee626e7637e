"""The whole gateway with 50,000 grants on 20 simulated locks.

The fake cloud runs in its own process (its memory and CPU are not the gateway's), seeded with
the grants (one PIN code each, 2,500 per lock). The gateway starts on an empty store and runs
its first full sync while a monitor measures how long the event loop is held at a time. Prints
the longest stall during the full sync (goal <= 50 ms), the time until every lock holds what
its plan says (in line), and the process's peak RSS (goal <= 200 MB).
Run: ``.venv/bin/python bench/bench_daemon.py [--grants N] [--locks N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from lockgate_sim.driver import SimDriver

from bench.loopstall import StallMonitor
from drivers.registry import DriverRegistry
from gateway.config import parse_config
from gateway.daemon import Gateway


def seed(grants: int, locks: int) -> dict[str, Any]:
    return {
        "spaces": [{"space_id": f"space-{i}", "name": f"S{i}"} for i in range(locks)],
        "user_identities": [
            {"user_identity_id": f"u{i}", "full_name": f"U{i}"} for i in range(100)
        ],
        "access_grants": [
            {
                "access_grant_id": f"g{i:06d}",
                "user_identity_id": f"u{i % 100}",
                "space_ids": [f"space-{i % locks}"],
                "starts_in_s": -3600,
                "requested_access_methods": [{"mode": "code", "code": f"{i:06d}"}],
            }
            for i in range(grants)
        ],
    }


def config(tmp: Path, url: str, locks: int, grants: int) -> dict[str, Any]:
    return {
        "gateway_id": "bench",
        "cloud": {
            "endpoint": url,
            "api_key": {"file": str(tmp / "key")},
            "poll_interval_s": 3600,
            "request_timeout_s": 60,
        },
        "store": {"path": str(tmp / "db"), "key": {"file": str(tmp / "store.key")}},
        "time": {"require_kernel_sync": False},
        "locks": [
            {
                "id": f"lock{i}",
                "space_ids": [f"space-{i}"],
                "driver": {"type": "sim", "slots": grants // locks + 10, "max_batch": 100},
            }
            for i in range(locks)
        ],
    }


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    (tmp / "seed.json").write_text(json.dumps(seed(args.grants, args.locks)))
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
        [sys.executable, "-m", "fakecloud", "--seed", str(tmp / "seed.json"), "--port", "0",
         "--api-key-file", str(tmp / "key")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = (await asyncio.to_thread(proc.stdout.readline)).strip().split()[-1]
        (tmp / "key").chmod(0o600)
        cfg = parse_config(
            config(tmp, url, args.locks, args.grants), DriverRegistry([SimDriver]), "bench"
        )
        rss0 = rss_mib()
        async with StallMonitor() as monitor:
            t0 = time.perf_counter()
            async with Gateway(cfg, DriverRegistry([SimDriver])) as gw, gw.serving():
                await gw.ready.wait()
                t_ready = time.perf_counter() - t0
                start_stall = monitor.longest_s  # opening the store (key derivation) and locks
                monitor.reset()
                async with gw.sync_loop.synced:
                    await gw.sync_loop.synced.wait_for(
                        lambda: gw.sync_loop.health.last_full_sync_at is not None
                    )
                t_sync = time.perf_counter() - t0
                print(f"  full sync done at {t_sync:6.1f} s", flush=True)
                sync_stall = monitor.longest_s
                for lock_id, rec in gw.locks.items():
                    async with asyncio.timeout(args.inline_timeout_s):
                        sim = cast(SimDriver, rec.handle.driver).sim
                        await rec.wait_for(
                            lambda sim=sim: len(sim._slots) >= args.grants // args.locks
                        )
                    assert rec.last_plan is not None
                    print(
                        f"  {lock_id} in line at {time.perf_counter() - t0:6.1f} s "
                        f"({len(rec.last_plan.desired)} codes)",
                        flush=True,
                    )
                t_inline = time.perf_counter() - t0
        return {
            "ready_s": t_ready,
            "sync_s": t_sync,
            "sync_stall_ms": sync_stall * 1000,
            "stall_ms": monitor.longest_s * 1000,
            "start_stall_ms": start_stall * 1000,
            "inline_s": t_inline,
            "rss_mib": rss_mib(),
            "rss0_mib": rss0,
        }
    finally:
        proc.terminate()
        proc.wait()


def measure(grants: int = 50_000, locks: int = 20) -> dict[str, float]:
    args = argparse.Namespace(grants=grants, locks=locks, inline_timeout_s=900.0)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        return asyncio.run(run(args, Path(d)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grants", type=int, default=50_000)
    ap.add_argument("--locks", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    args = ap.parse_args()
    if args.quick:
        args.grants, args.locks = 200, 2
    r = measure(args.grants, args.locks)
    print(f"{args.grants:,} grants on {args.locks} simulated locks, empty store at start")
    print(f"start -> ready:                    {r['ready_s']:7.2f} s")
    print(f"first full sync done:              {r['sync_s']:7.2f} s")
    print(f"longest loop stall during sync:    {r['sync_stall_ms']:7.1f} ms  (goal <= 50 ms)")
    print(f"every lock in line:                {r['inline_s']:7.2f} s")
    print(f"longest loop stall, whole run:     {r['stall_ms']:7.1f} ms")
    print(f"longest loop stall, start -> ready: {r['start_stall_ms']:6.1f} ms")
    print(f"peak RSS:                          {r['rss_mib']:7.0f} MiB (goal <= 200 MB)")


if __name__ == "__main__":
    main()
