"""Sync and plan at site scale: 10,000 grants with 3 access methods each, across 50 locks.

The fake cloud runs in its own process (so its memory is not counted), seeded with the grants.
The gateway's real client fetches every page over HTTP, applies the snapshot to a real SQLite
store (encrypting 30,000 secrets), then plans all 50 locks. Prints the time of each stage and
the peak memory the gateway needed (Python allocations traced, and the process RSS growth).

What the bench itself needs stays out of this process's memory, which the RSS figure counts:
the seed is written to its file one grant at a time (never whole here), and the pages the
gateway read are kept for the ``json.loads`` floor in a file, not in a list (a site's pages
are as large as the gateway's own records of them: 24 MiB for 10,000 grants).
Run: ``.venv/bin/python -m bench.bench_sync [--grants N] [--locks N]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import json
import os
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rss import peak_rss_mib
from drivers.base import Capabilities, CredentialKind
from drivers.clock import SystemClock
from gateway import heap
from gateway.cloud.client import CloudClient
from gateway.planner import LockScope, plan_shared
from gateway.secrets import SecretRef
from gateway.store.schema import MIGRATIONS
from gateway.store.store import Store
from gateway.sync import CloudSync, Scope
from gateway.views import ViewCache

SPACES = 10
RESULT: dict[str, float] = {}
"""The last run's figures, for bench/run_all.py."""


def _key(i: int) -> str:
    return base64.b64encode(i.to_bytes(32, "big")).decode()


def _head() -> dict[str, Any]:
    return {
        "spaces": [
            {"space_id": f"00000000-0000-4000-8000-{i:012d}", "name": f"S{i}"}
            for i in range(SPACES)
        ],
        "user_identities": [
            {"user_identity_id": f"00000000-0000-4000-9000-{i:012d}", "full_name": f"U{i}"}
            for i in range(100)
        ],
    }


def _grant(i: int, now: datetime) -> dict[str, Any]:
    return {
        "user_identity_id": f"00000000-0000-4000-9000-{i % 100:012d}",
        "space_ids": [f"00000000-0000-4000-8000-{i % SPACES:012d}"],
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "requested_access_methods": [
            {"mode": "code", "code": f"{i:08d}"},
            {"mode": "card", "card_number": f"9{i:09d}"},
            {"mode": "mobile_key", "extra": {"mobile_key": {"public_key": _key(i)}}},
        ],
    }


def seed(grants: int) -> dict[str, Any]:
    """The whole seed as one object (for small sizes; see :func:`write_seed`)."""
    now = datetime.now(UTC)
    return {**_head(), "access_grants": [_grant(i, now) for i in range(grants)]}


def write_seed(path: Path, grants: int) -> None:
    """The fake cloud's seed, written one grant at a time (never whole in this process)."""
    now = datetime.now(UTC)
    with path.open("w") as f:
        f.write(json.dumps(_head())[:-1] + ', "access_grants": [')
        for i in range(grants):
            f.write(("," if i else "") + json.dumps(_grant(i, now)))
        f.write("]}")


async def wait_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    return line.strip().split()[-1]


async def run(args: argparse.Namespace, tmp: Path) -> None:
    # As the daemon does before it makes any thread (Gateway.__aenter__): one glibc arena for
    # every thread (the sync's writes run in a worker thread); the thread reading the fake
    # cloud's address below comes first here.
    heap.one_arena()
    write_seed(tmp / "seed.json", args.grants)
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
        bodies = Pages(tmp / "pages")
        async with CloudClient(url, api_key, timeout_s=60) as client:
            once = client._once

            async def recording(path: str, body: dict[str, Any]) -> bytes:
                content = await once(path, body)
                bodies.write(content)
                return content

            client._once = recording  # type: ignore[method-assign]
            views = ViewCache(store)
            sync = CloudSync(client, store, scope, SystemClock(), page_size=500, views=views)

            async def plan_all() -> int:
                view = await views.refresh()  # the sync indexed it from what it read
                now = datetime.now(UTC)
                desired = 0
                for s in scopes:
                    p = await plan_shared(
                        view, s, caps, now, lead_time=timedelta(hours=1), tag=store.box.tag
                    )
                    desired += len(p.desired)
                return desired

            threads = Threads(store, profile=args.profile > 0)
            t0, c0 = time.perf_counter(), time.process_time()
            threads.start()
            report = await sync.full()
            t1, c1 = time.perf_counter(), time.process_time()
            desired = await plan_all()
            threads.stop()
            t3, c3 = time.perf_counter(), time.process_time()
            _, peak = tracemalloc.get_traced_memory()
            if args.trace_memory:
                tracemalloc.stop()
            rss1 = peak_rss_mib(os.getpid()) * 1024
            floor = json_floor(bodies)
            pages = len(bodies)
            print(
                f"full sync over HTTP ({client.requests} requests, {report.grants:,} grants, "
                f"{report.methods:,} methods): {t1 - t0:6.2f} s wall, {c1 - c0:5.2f} s gateway CPU"
            )
            print("  (the difference is the fake cloud answering in its own process)")
            print(
                f"plan {args.locks} locks ({desired:,} credentials due): {t3 - t1:6.2f} s wall,"
                f" {c3 - c1:5.2f} s CPU"
            )
            cpu = c3 - c0
            print(
                f"FIRST SYNC + plan gateway CPU {cpu:.2f} s; floor json.loads of the same "
                f"{pages} pages {floor:.3f} s: {cpu / floor:.1f}x the floor (goal <= 2x)"
            )
            sqlite_s = sqlite_floor(store, tmp / "floor.db")
            print(
                f"  storage alone: inserting the same {store_rows(store):,} rows into the same"
                f" schema (one transaction, synchronous=FULL) {sqlite_s:.3f} s ="
                f" {sqlite_s / floor:.1f}x json.loads"
            )
            traced = (
                f"peak traced Python memory {peak / 2**20:.1f} MiB; " if args.trace_memory else ""
            )
            print(
                f"memory: {traced}process RSS grew {(rss1 - rss0) / 1024:.1f} MiB during sync +"
                f" plan (max RSS {rss1 / 1024:.0f} MiB, goal <= 150 MB)"
            )
            threads.report(args.profile)
            RESULT.update(
                cpu_s=cpu,
                floor_s=floor,
                rss_mib=rss1 / 1024,
                rss0_mib=rss0 / 1024,
                wall_s=t3 - t0,
                sqlite_s=sqlite_s,
            )

            # The hourly full resync of the same site: unchanged, then with 1% of grants changed.
            for label, changed in (("unchanged", 0), ("1% of grants changed", args.grants // 100)):
                if changed:
                    await change_grants(client, store, changed)
                bodies.clear()
                before = client.requests
                c0 = time.process_time()
                report = await sync.full()
                await plan_all()
                cpu = time.process_time() - c0
                floor = json_floor(bodies)
                print(
                    f"RESYNC ({label}, {client.requests - before} requests) + plan gateway CPU "
                    f"{cpu:.3f} s; floor json.loads of its {len(bodies)} pages {floor:.3f} s:"
                    f" {cpu / floor:.1f}x the floor (goal <= 2x)"
                )
                key = "resync_same" if not changed else "resync_changed"
                RESULT.update({f"{key}_cpu_s": cpu, f"{key}_floor_s": floor})
        store.close()
        bodies.close()
    finally:
        proc.terminate()
        proc.wait()


class Threads:
    """The CPU time of each thread at work (``time.thread_time``): the event loop's thread,
    and the store's bulk-write thread around each bulk write (the process CPU the bench
    prints counts both); with ``profile``, a cProfile of each on that clock too."""

    def __init__(self, store: Store, profile: bool) -> None:
        self.loop = cProfile.Profile(time.thread_time) if profile else None
        self.writer = cProfile.Profile(time.thread_time) if profile else None
        self.loop_s = self.writer_s = 0.0
        self._loop0 = 0.0
        db = store.db
        run = db._bulk_run

        def timed(*args: Any) -> Any:
            c0 = time.thread_time()
            if self.writer is not None:
                self.writer.enable()
            try:
                return run(*args)
            finally:
                if self.writer is not None:
                    self.writer.disable()
                self.writer_s += time.thread_time() - c0

        db._bulk_run = timed  # type: ignore[method-assign, assignment]

    def start(self) -> None:
        self._loop0 = time.thread_time()
        if self.loop is not None:
            self.loop.enable()

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.disable()
        self.loop_s += time.thread_time() - self._loop0

    def report(self, lines: int) -> None:
        print(
            f"  CPU by thread: event loop {self.loop_s:.2f} s, bulk-write thread"
            f" {self.writer_s:.2f} s"
        )
        for name, prof in (("event loop thread", self.loop), ("bulk-write thread", self.writer)):
            if prof is None:
                continue
            stats = pstats.Stats(prof)
            print(f"--- {name} (profiled: the profiler inflates small calls several times)")
            stats.sort_stats("tottime").print_stats(lines)
            stats.sort_stats("cumulative").print_stats(lines)


class Pages:
    """The answers the gateway read, kept in a file for :func:`json_floor` (not in this
    process's memory, which the RSS figure measures)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w+b")
        self.sizes: list[int] = []

    def write(self, body: bytes) -> None:
        self._file.write(body)
        self.sizes.append(len(body))

    def clear(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self.sizes.clear()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self.sizes)

    def read(self) -> list[bytes]:
        f = self._file
        f.flush()
        f.seek(0)
        bodies = [f.read(n) for n in self.sizes]
        f.seek(0, 2)
        return bodies


def json_floor(pages: Pages) -> float:
    """CPU time of ``json.loads`` of ``pages``, with the collector off, so that how much the
    process holds (which the gateway's own collections pay for) does not move it."""
    bodies = pages.read()
    gc.disable()
    try:
        f0 = time.process_time()
        for body in bodies:
            json.loads(body)
        return time.process_time() - f0
    finally:
        gc.enable()


async def change_grants(client: CloudClient, store: Store, n: int) -> None:
    """Move the end of ``n`` grants (spread over the site) by a day, through the cloud's API."""
    ids = sorted(store.cloud.grants())
    for gid in ids[:: max(1, len(ids) // n)][:n]:
        g = store.cloud.grant(gid)
        assert g is not None
        assert g.ends_at is not None
        await client.call(
            "/access_grants/update",
            {"access_grant_id": gid, "ends_at": (g.ends_at + timedelta(days=1)).isoformat()},
        )


STORE_TABLES = ("grants", "methods", "cloud_objects")


def store_rows(store: Store) -> int:
    return sum(
        int(store.db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in STORE_TABLES
    )


def sqlite_floor(store: Store, path: Path) -> float:
    """CPU time of inserting the rows the sync wrote (grants, methods, raw objects) into an
    empty database of the same schema, one ``executemany`` per table, one commit, at
    ``synchronous=FULL``: the storage cost alone, with nothing computed."""
    rows = {t: store.db.conn.execute(f"SELECT * FROM {t}").fetchall() for t in STORE_TABLES}
    rows = {t: [tuple(r) for r in rs] for t, rs in rows.items()}
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for sql in MIGRATIONS:
        conn.executescript(sql)
    gc.disable()
    try:
        c0 = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for t, rs in rows.items():
            if rs:
                marks = ", ".join("?" * len(rs[0]))
                conn.executemany(f"INSERT INTO {t} VALUES ({marks})", rs)
        conn.execute("COMMIT")
        return time.process_time() - c0
    finally:
        gc.enable()
        conn.close()


def measure(grants: int = 10_000, locks: int = 50) -> dict[str, float]:
    args = argparse.Namespace(grants=grants, locks=locks, trace_memory=False, profile=0)
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
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="LINES",
        help="cProfile the first sync + plan per thread; print the top LINES functions",
    )
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
