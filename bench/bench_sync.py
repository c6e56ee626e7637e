"""Sync and plan at site scale: 10,000 grants with 3 access methods each, across 50 locks.

The fake cloud runs in its own process (so its memory is not counted), seeded with the grants.
The gateway's real client fetches every page over HTTP, applies the snapshot to a real SQLite
store (encrypting 30,000 secrets), then plans all 50 locks. Prints the time of each stage and
the peak memory the gateway needed (Python allocations traced, and the process RSS growth).
Run: ``.venv/bin/python -m bench.bench_sync [--grants N] [--locks N]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bench_daemon import peak_rss_mib
from drivers.base import Capabilities, CredentialKind
from drivers.clock import SystemClock
from gateway.cloud.client import CloudClient
from gateway.planner import LockScope, plan_shared
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.sync import CloudSync, Scope
from gateway.views import ViewCache

SPACES = 10
RESULT: dict[str, float] = {}
"""The last run's figures, for bench/run_all.py."""


def _key(i: int) -> str:
    return base64.b64encode(i.to_bytes(32, "big")).decode()


def seed(grants: int) -> dict:  # type: ignore[type-arg]
    spaces = [
        {"space_id": f"00000000-0000-4000-8000-{i:012d}", "name": f"S{i}"} for i in range(SPACES)
    ]
    users = [
        {"user_identity_id": f"00000000-0000-4000-9000-{i:012d}", "full_name": f"U{i}"}
        for i in range(100)
    ]
    now = datetime.now(UTC)
    out = []
    for i in range(grants):
        out.append(
            {
                "user_identity_id": users[i % 100]["user_identity_id"],
                "space_ids": [spaces[i % SPACES]["space_id"]],
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(days=30)).isoformat(),
                "requested_access_methods": [
                    {"mode": "code", "code": f"{i:08d}"},
                    {"mode": "card", "card_number": f"9{i:09d}"},
                    {"mode": "mobile_key", "extra": {"mobile_key": {"public_key": _key(i)}}},
                ],
            }
        )
    return {"spaces": spaces, "user_identities": users, "access_grants": out}


async def wait_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    return line.strip().split()[-1]


async def run(args: argparse.Namespace, tmp: Path) -> None:
    (tmp / "seed.json").write_text(json.dumps(seed(args.grants)))
    print(f"seeding the fake cloud with {args.grants:,} grants x 3 access methods ...", flush=True)
    seeding = time.perf_counter()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
        [
            sys.executable,
            "-m",
            "fakecloud",
            "--seed",
            str(tmp / "seed.json"),
            "--port",
            "0",
            "--api-key-file",
            str(tmp / "key"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = await wait_url(proc)
        print(f"fake cloud up (process start + seed) in {time.perf_counter() - seeding:.2f} s")
        api_key = (tmp / "key").read_text().strip()
        store = Store.open(tmp / "db", SecretRef(file=tmp / "store.key"))
        spaces = [f"00000000-0000-4000-8000-{i:012d}" for i in range(SPACES)]
        scopes = [
            LockScope(f"lock{i}", frozenset({spaces[i % SPACES]}), frozenset(), frozenset())
            for i in range(args.locks)
        ]
        scope = Scope(frozenset(spaces), frozenset(), frozenset())
        caps = Capabilities(
            slots=5000, max_batch=50, kinds=frozenset(CredentialKind), enforces_time_windows=True
        )
        rss0 = peak_rss_mib(os.getpid()) * 1024
        if args.trace_memory:
            tracemalloc.start()
        bodies: list[bytes] = []
        async with CloudClient(url, api_key, timeout_s=60) as client:
            post = client._http.post

            async def recording_post(*a: Any, **kw: Any) -> httpx.Response:
                resp = await post(*a, **kw)
                bodies.append(resp.content)
                return resp

            client._http.post = recording_post  # type: ignore[method-assign]
            views = ViewCache(store)
            sync = CloudSync(client, store, scope, SystemClock(), page_size=500, views=views)
            t0, c0 = time.perf_counter(), time.process_time()
            report = await sync.full()
            t1, c1 = time.perf_counter(), time.process_time()
        view = await views.refresh()  # the sync indexed it from what it read
        t2 = time.perf_counter()
        now = datetime.now(UTC)
        desired = 0
        for s in scopes:
            p = await plan_shared(
                view, s, caps, now, lead_time=timedelta(hours=1), tag=store.box.tag
            )
            desired += len(p.desired)
        t3, c3 = time.perf_counter(), time.process_time()
        _, peak = tracemalloc.get_traced_memory()
        if args.trace_memory:
            tracemalloc.stop()
        rss1 = peak_rss_mib(os.getpid()) * 1024
        # The floor is the decoding alone: with the collector off, so that how much the
        # process holds (which the gateway's own collections pay for) does not move it.
        gc.disable()
        f0 = time.process_time()
        for body in bodies:
            json.loads(body)
        floor = time.process_time() - f0
        gc.enable()
        print(
            f"full sync over HTTP ({client.requests} requests, {report.grants:,} grants, "
            f"{report.methods:,} methods): {t1 - t0:6.2f} s wall, {c1 - c0:5.2f} s gateway CPU"
        )
        print("  (the difference is the fake cloud answering in its own process)")
        print(f"the cloud view (indexed by the sync):            {t2 - t1:6.2f} s wall")
        print(f"plan {args.locks} locks ({desired:,} credentials due): {t3 - t2:6.2f} s wall")
        cpu = c3 - c0
        print(
            f"sync + plan gateway CPU {cpu:.2f} s; floor json.loads of the same "
            f"{len(bodies)} pages {floor:.2f} s: {cpu / floor:.1f}x the floor (goal <= 2x)"
        )
        traced = f"peak traced Python memory {peak / 2**20:.1f} MiB; " if args.trace_memory else ""
        print(
            f"memory: {traced}process RSS grew {(rss1 - rss0) / 1024:.1f} MiB during sync + plan"
            f" (max RSS {rss1 / 1024:.0f} MiB, goal <= 150 MB)"
        )
        RESULT.update(cpu_s=cpu, floor_s=floor, rss_mib=rss1 / 1024, wall_s=t3 - t0)
        store.close()
    finally:
        proc.terminate()
        proc.wait()


def measure(grants: int = 10_000, locks: int = 50) -> dict[str, float]:
    args = argparse.Namespace(grants=grants, locks=locks, trace_memory=False)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        asyncio.run(run(args, Path(d)))
    return dict(RESULT)


def main() -> None:
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    ap = argparse.ArgumentParser()
    ap.add_argument("--grants", type=int, default=10_000)
    ap.add_argument("--locks", type=int, default=50)
    ap.add_argument("--trace-memory", action="store_true", help="tracemalloc (slower)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    args = ap.parse_args()
    if args.quick:
        args.grants, args.locks = 200, 5
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        asyncio.run(run(args, Path(d)))
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
