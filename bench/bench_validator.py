"""Validator throughput and latency with 100,000 active credentials.

Prints decisions per second and the median / p99 latency of one decision, for dry runs (no
write) and for recorded decisions (each one an outbox row committed with synchronous=FULL).
Run: ``.venv/bin/python bench/bench_validator.py [--credentials N] [--decisions N]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig, ValidatorConfig
from gateway.lockout import LockoutPolicy
from gateway.models import AccessMethod, CloudSnapshot, Grant
from gateway.planner import LockScope
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache


def build(store: Store, n: int, t: datetime) -> list[bytes]:
    grants, methods, pins = [], [], []
    per_grant = 2
    for i in range(n // per_grant):
        gid = f"g{i}"
        grants.append(
            Grant(gid, t - timedelta(hours=1), t + timedelta(days=1), frozenset({f"s{i % 20}"}))
        )
        for j in range(per_grant):
            pin = f"{(i * per_grant + j):08d}".encode()
            pins.append(pin)
            methods.append(AccessMethod(f"m{i}-{j}", gid, "code", secret=pin))
    store.cloud.apply_snapshot(CloudSnapshot(grants, methods, [], {}, []), t)
    return pins


def measure(fn, count: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    lat = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t0)
    return time.perf_counter() - start, lat


def report(name: str, total: float, lat: list[float]) -> None:
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    median = statistics.median(lat) * 1e6
    rate = len(lat) / total
    p99_us = p99 * 1e6
    print(f"{name:<28} {rate:>10,.0f} decisions/s   median {median:7.1f} µs   p99 {p99_us:7.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--credentials", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    args = ap.parse_args()
    if args.quick:
        args.credentials, args.decisions = 1_000, 400
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = FakeClock(t)
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "db", SecretRef(file=Path(d) / "key"))
        t0 = time.perf_counter()
        pins = build(store, args.credentials, t)
        print(f"loaded {len(pins):,} active credentials in {time.perf_counter() - t0:.1f} s")
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
                store.lockouts,
                ValidatorConfig(lockout_failures=10**9, site_lockout_failures=10**9),
            ),
        )
        rng = random.Random(1)
        validator.decide(CredentialKind.CODE, pins[0], "lock0", dry_run=True)  # warm the view

        def one(dry: bool) -> None:
            i = rng.randrange(len(pins))
            # the right lock for this credential most of the time, a wrong PIN sometimes
            pin = pins[i] if rng.random() < 0.9 else b"99999999"
            lock = f"lock{(i // 2) % 20}"
            if dry:
                validator.judge(CredentialKind.CODE, pin, lock)
            else:
                validator.decide(CredentialKind.CODE, pin, lock)

        total, lat = measure(lambda: one(True), args.decisions)
        report("decision alone (no write)", total, lat)
        total, lat = measure(lambda: one(False), args.decisions // 4)
        report("recorded (outbox commit)", total, lat)
        store.close()


if __name__ == "__main__":
    main()
