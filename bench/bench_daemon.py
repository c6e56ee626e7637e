"""The whole gateway with 50,000 grants on 20 simulated locks.

The fake cloud runs in its own process (its memory and CPU are not the gateway's), seeded with
the grants (one PIN code each, 2,500 per lock); the seed file is written one grant at a time,
so the gateway's process never holds it. The gateway starts on an empty store and runs its
first full sync while a monitor measures how long the event loop is held at a time. Prints the
longest stall during the full sync (goal <= 50 ms), the time until every lock holds what its
plan says (in line), the gateway process's peak RSS (goal <= 200 MB; the simulated locks run
in it too) and, apart, the fake cloud's.
Run: ``.venv/bin/python -m bench.bench_daemon [--grants N] [--locks N] [--name-stalls]
[--loop-writes]`` (``--name-stalls``: the longest stalls with the code they were spent in;
``--loop-writes``: a durable one-row write on the loop's own connection every 50 ms throughout,
as the loop's writers make them (an audit-log page into the outbox, a delivery mark), and the
longest time one took to commit: while a bulk write holds the database such a write waits for
it in its own task, not holding the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

from lockgate_sim.driver import SimDriver
from lockgate_sim.lock import SimLock

from bench.loopstall import StallMonitor
from bench.rss import peak_rss_mib
from drivers.registry import DriverRegistry
from gateway import heap
from gateway.config import parse_config
from gateway.daemon import Gateway


def _grant(i: int, locks: int) -> dict[str, Any]:
    return {
        "access_grant_id": f"g{i:06d}",
        "user_identity_id": f"u{i % 100}",
        "space_ids": [f"space-{i % locks}"],
        "starts_in_s": -3600,
        "requested_access_methods": [{"mode": "code", "code": f"{i:06d}"}],
    }


def _head(locks: int) -> dict[str, Any]:
    return {
        "spaces": [{"space_id": f"space-{i}", "name": f"S{i}"} for i in range(locks)],
        "user_identities": [
            {"user_identity_id": f"u{i}", "full_name": f"U{i}"} for i in range(100)
        ],
    }


def seed(grants: int, locks: int) -> dict[str, Any]:
    """The whole seed as one object (for small sizes; see :func:`write_seed`)."""
    return {**_head(locks), "access_grants": [_grant(i, locks) for i in range(grants)]}


def write_seed(path: Path, grants: int, locks: int) -> None:
    """The fake cloud's seed, written one grant at a time (never whole in this process)."""
    with path.open("w") as f:
        f.write(json.dumps(_head(locks))[:-1] + ', "access_grants": [')
        for i in range(grants):
            f.write(("," if i else "") + json.dumps(_grant(i, locks)))
        f.write("]}")


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


LOOP_WRITE_EVERY_S = 0.05


class LoopWrites:
    """A durable one-row write from a task on the loop every 50 ms, timed until committed.

    It writes the way the gateway's loop writers do (:meth:`Database.write`, here through
    :meth:`Meta.save`): while a bulk write holds the database, the writer's task waits for it
    and the loop goes on (the stall monitor shows whether it does); the time to commit is how
    long such a writer (an audit-log page, a delivery mark) waited."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self.count = 0
        self.waited = 0
        """Writes that found the database held by another connection's write."""

    def reset(self) -> None:
        self.longest_s = 0.0
        self.waited = 0

    async def run(self, gw: Gateway) -> None:
        while True:
            t = time.perf_counter()
            saving = asyncio.ensure_future(gw.store.meta.save("bench_loop_write", str(self.count)))
            await asyncio.sleep(0)  # its first step: committed, or waiting
            self.waited += not saving.done()
            await saving
            self.longest_s = max(self.longest_s, time.perf_counter() - t)
            self.count += 1
            await asyncio.sleep(LOOP_WRITE_EVERY_S)


def holds(sim: SimLock, codes: int) -> bool:
    """Whether the simulated lock holds at least ``codes`` credentials."""
    return len(sim._slots) >= codes


def rss_mib() -> float:
    """This process's peak RSS. From /proc (VmHWM), not ``ru_maxrss``: Linux carries the
    ``ru_maxrss`` of the parent (taken at fork) across exec, so a bench run in a process
    spawned by a large one (``bench.run_all``) would report the parent's peak."""
    return peak_rss_mib(os.getpid())


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    # The daemon limits glibc's arenas before it makes any thread (Gateway.__aenter__); the
    # thread reading the fake cloud's address below comes first here.
    heap.one_arena()
    write_seed(tmp / "seed.json", args.grants, args.locks)
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
        if args.trace_memory:
            tracemalloc.start()
        async with StallMonitor(name_stalls=args.name_stalls) as monitor:
            t0 = time.perf_counter()
            writes = LoopWrites()
            async with (
                Gateway(cfg, DriverRegistry([SimDriver])) as gw,
                gw.serving(),
                asyncio.TaskGroup() as tasks,
            ):
                await gw.ready.wait()
                writer = tasks.create_task(writes.run(gw)) if args.loop_writes else None
                t_ready = time.perf_counter() - t0
                # Opening the store (key derivation) and the locks: counted once the monitor
                # next wakes (the stall it is in may not be over yet).
                await monitor.next_wake()
                start_stall = monitor.longest_s
                monitor.reset()
                async with gw.sync_loop.synced:
                    await gw.sync_loop.synced.wait_for(
                        lambda: gw.sync_loop.health.last_full_sync_at is not None
                    )
                t_sync = time.perf_counter() - t0
                rss_sync = rss_mib()
                print(f"  full sync done at {t_sync:6.1f} s, peak RSS {rss_sync:.0f} MiB")
                if args.trace_memory:
                    top = tracemalloc.take_snapshot().statistics("lineno")[:12]
                    print("\n".join(f"    {t}" for t in top))
                sync_stall, sync_cpu = monitor.longest_s, monitor.longest_cpu_s
                sync_write, sync_waited = writes.longest_s, writes.waited
                sync_worst = monitor.worst()
                sync_slow = monitor.worst_passes()
                sync_gc = max(monitor.gc_longest_s)
                sync_gc_other = monitor.gc_other_thread_longest_s
                for lock_id, rec in gw.locks.items():
                    async with asyncio.timeout(args.inline_timeout_s):
                        sim = cast(SimDriver, rec.handle.driver).sim
                        await rec.wait_for(functools.partial(holds, sim, args.grants // args.locks))
                    assert rec.last_plan is not None
                    print(
                        f"  {lock_id} in line at {time.perf_counter() - t0:6.1f} s "
                        f"({len(rec.last_plan.desired)} codes)",
                        flush=True,
                    )
                t_inline = time.perf_counter() - t0
                # The run is measured up to here (not the shutdown, nor what follows).
                whole_stall, after_worst = monitor.longest_s, monitor.worst()
                after_slow = monitor.worst_passes()
                whole_cpu = monitor.longest_cpu_s
                gc_runs, gc_longest = list(monitor.gc_runs), list(monitor.gc_longest_s)
                inline_write = writes.longest_s
                resync: dict[str, float] = {}
                if args.resync:  # a second full sync of the same data (hourly in production)
                    await monitor.next_wake()
                    monitor.reset()
                    writes.reset()
                    t1 = time.perf_counter()
                    async with asyncio.timeout(args.inline_timeout_s):
                        await gw.sync_loop.sync_now(full=True)
                    resync = {
                        "resync_s": time.perf_counter() - t1,
                        "resync_stall_ms": monitor.longest_s * 1000,
                        "resync_stall_cpu_ms": monitor.longest_cpu_s * 1000,
                        "resync_write_ms": writes.longest_s * 1000,
                    }
                    if args.name_stalls:
                        print("longest stalls during the second full sync:")
                        for stall in monitor.worst():
                            print("  " + stall.text())
                # What gc.freeze (gateway.cooperative.settle) kept that is garbage now: cycles
                # that were alive when frozen. Unfreezing and collecting finds them.
                if writer is not None:
                    writer.cancel()
                frozen = gc.get_freeze_count()
                gc.unfreeze()
                kept = gc.collect()
                if args.trace_memory:
                    top = tracemalloc.take_snapshot().statistics("filename")[:15]
                    print("  every lock in line, Python memory by file:")
                    print("\n".join(f"    {t}" for t in top))
        if args.name_stalls:
            print("longest stalls during the full sync:")
            for stall in sync_worst:
                print("  " + stall.text())
            print("the loop callbacks of those stalls (task resumed at .. suspended at):")
            for slow in sync_slow:
                print("  " + slow.text())
            print("longest stalls after it:")
            for stall in after_worst:
                print("  " + stall.text())
            print("the loop callbacks of those stalls (task resumed at .. suspended at):")
            for slow in after_slow:
                print("  " + slow.text())
        gc_ms = ", ".join(
            f"gen{g} {n} runs, longest {s * 1000:.0f} ms"
            for g, (n, s) in enumerate(zip(gc_runs, gc_longest, strict=True))
        )
        print(f"garbage collections after the sync: {gc_ms}")
        return {
            "ready_s": t_ready,
            "sync_s": t_sync,
            "sync_stall_ms": sync_stall * 1000,
            "sync_stall_cpu_ms": sync_cpu * 1000,
            "stall_cpu_ms": whole_cpu * 1000,
            "sync_gc_ms": sync_gc * 1000,
            "sync_gc_other_ms": sync_gc_other * 1000,
            "stall_ms": whole_stall * 1000,
            "start_stall_ms": start_stall * 1000,
            "inline_s": t_inline,
            "rss_mib": rss_mib(),
            "rss_sync_mib": rss_sync,
            "rss0_mib": rss0,
            "cloud_rss_mib": peak_rss_mib(proc.pid),
            "frozen": frozen,
            "frozen_garbage": kept,
            "loop_writes": writes.count,
            "sync_write_ms": sync_write * 1000,
            "sync_writes_waited": sync_waited,
            "write_ms": inline_write * 1000,
            **resync,
        }
    finally:
        proc.terminate()
        proc.wait()


def measure(
    grants: int = 50_000,
    locks: int = 20,
    name_stalls: bool = False,
    trace_memory: bool = False,
    resync: bool = False,
    loop_writes: bool = False,
) -> dict[str, float]:
    args = argparse.Namespace(
        grants=grants,
        locks=locks,
        inline_timeout_s=900.0,
        name_stalls=name_stalls,
        trace_memory=trace_memory,
        resync=resync,
        loop_writes=loop_writes,
    )
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        return asyncio.run(run(args, Path(d)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grants", type=int, default=50_000)
    ap.add_argument("--locks", type=int, default=20)
    ap.add_argument("--name-stalls", action="store_true", help="sample the stalled loop's stack")
    ap.add_argument("--trace-memory", action="store_true", help="tracemalloc (slower)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    ap.add_argument("--resync", action="store_true", help="then a second full sync, measured")
    ap.add_argument(
        "--loop-writes", action="store_true", help="a durable write on the loop every 50 ms"
    )
    args = ap.parse_args()
    if args.quick:
        args.grants, args.locks = 200, 2
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    r = measure(
        args.grants, args.locks, args.name_stalls, args.trace_memory, args.resync, args.loop_writes
    )
    print(f"{args.grants:,} grants on {args.locks} simulated locks, empty store at start")
    print(f"start -> ready:                    {r['ready_s']:7.2f} s")
    print(f"first full sync done:              {r['sync_s']:7.2f} s")
    print(f"longest loop stall during sync:    {r['sync_stall_ms']:7.1f} ms  (goal <= 50 ms)")
    cpu = r["sync_stall_cpu_ms"]
    print(f"  longest CPU hold of the loop thread: {cpu:4.1f} ms (a longer stall")
    print("  than this is the process waiting for a core that other processes held)")
    print(f"  longest garbage collection in it: {r['sync_gc_ms']:7.1f} ms")
    print(f"    (of which in another thread: {r['sync_gc_other_ms']:7.1f} ms)")
    print(f"every lock in line:                {r['inline_s']:7.2f} s")
    print(f"longest loop stall, ready -> in line: {r['stall_ms']:5.1f} ms")
    print(f"  longest CPU hold of the loop thread: {r['stall_cpu_ms']:4.1f} ms")
    print(f"longest loop stall, start -> ready: {r['start_stall_ms']:6.1f} ms")
    print(f"gateway process peak RSS:          {r['rss_mib']:7.0f} MiB (goal <= 200 MB)")
    print(f"  (peak when the full sync was done: {r['rss_sync_mib']:5.0f} MiB)")
    print(f"  (RSS before the gateway started: {r['rss0_mib']:7.0f} MiB)")
    print(f"fake cloud process peak RSS:       {r['cloud_rss_mib']:7.0f} MiB (not the gateway's)")
    if r["loop_writes"]:
        print(f"loop writes (one row, durable, every 50 ms): {r['loop_writes']:,.0f}")
        print("  time from asking to committed (the writer's task waits; the loop goes on:")
        print("  see the loop stall above, measured with these writes running)")
        print(f"  longest during the first full sync: {r['sync_write_ms']:7.1f} ms"
              f" ({r['sync_writes_waited']:.0f} writes found a bulk write holding the database)")
        print(f"  longest, ready -> in line:          {r['write_ms']:7.1f} ms")
        if "resync_write_ms" in r:
            print(f"  longest during the second sync:     {r['resync_write_ms']:7.1f} ms")
    if "resync_s" in r:
        print(f"second full sync (same data):      {r['resync_s']:7.2f} s")
        print(f"  longest loop stall in it:        {r['resync_stall_ms']:7.1f} ms (goal <= 50 ms)")
        print(f"  longest CPU hold of the loop thread: {r['resync_stall_cpu_ms']:4.1f} ms")
    print(
        f"objects frozen by settle(): {r['frozen']:,.0f}; garbage among them when every lock"
        f" was in line: {r['frozen_garbage']:,.0f} objects (kept until unfrozen)"
    )
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
