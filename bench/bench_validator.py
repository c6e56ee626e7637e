"""Validator throughput and latency with 100,000 active credentials.

Prints decisions per second and the median / p99 latency of one decision:

- ``judge``: the decision alone, nothing recorded (what the issue's table calls the offline
  decision; an operator's *dry run*, ``decide(dry_run=True)``, is recorded like any other);
- the same on the daemon's clock (wall and monotonic time, the kernel's sync state, the time
  trust assessed on every decision) instead of a fake clock;
- recorded decisions, one ``synchronous=FULL`` commit each (``decide``, which waits for it);
- recorded decisions as doors get them (``decide_durably``): 64, then 128 doors asking at
  once, each answered once its decision is durable, decisions made during a commit sharing
  the next one with what the doors just answered decide (group commit; with 64 doors
  about 60 decisions share each commit);

and, measured in the same run on the same store, the floor for a recorded decision: outbox rows
committed 64 at a time with ``synchronous=FULL``. Only the call is timed (the workload is drawn
before). Beside the wall-clock figures, the CPU time they took, by thread (the event loop's;
for the group commit also the store's writing thread): on a busy box the wall figures include
what other processes took, the CPU ones do not (a busy sibling core still slows them).
Run: ``.venv/bin/python -m bench.bench_validator [--credentials N] [--decisions N]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drivers.base import CredentialKind
from gateway.clock import Clock, FakeClock, SystemTime
from gateway.config import TimeConfig, ValidatorConfig
from gateway.events import AccessEvent
from gateway.lockout import LockoutPolicy
from gateway.models import AccessMethod, CloudSnapshot, Grant
from gateway.planner import LockScope
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import HonestClock, TimeTrust, kernel_clock_synchronised
from gateway.validator import Validator
from gateway.views import ViewCache

LOCKS = 20
FLOOR_BATCH = 64


def build(store: Store, n: int, t: datetime) -> list[bytes]:
    grants, methods, pins = [], [], []
    per_grant = 2
    for i in range(n // per_grant):
        gid = f"g{i}"
        grants.append(
            Grant(
                gid,
                t - timedelta(hours=1),
                t + timedelta(days=1),
                frozenset({f"s{i % LOCKS}"}),
            )
        )
        for j in range(per_grant):
            pin = f"{(i * per_grant + j):08d}".encode()
            pins.append(pin)
            methods.append(AccessMethod(f"m{i}-{j}", gid, "code", secret=pin))
    store.cloud.apply_snapshot(CloudSnapshot(grants, methods, [], {}, []), t)
    return pins


def scopes() -> dict[str, LockScope]:
    return {
        f"lock{i}": LockScope(f"lock{i}", frozenset({f"s{i}"}), frozenset(), frozenset())
        for i in range(LOCKS)
    }


def validator(store: Store, clock: Clock, trust: TimeTrust) -> Validator:
    return Validator(
        store,
        ViewCache(store).current,
        scopes(),
        clock,
        trust,
        TimeConfig(),
        LockoutPolicy(
            store.lockouts,
            # Never locked out, and a failure leaves the count after a millisecond: the
            # recorded benches move the time on 1 ms a decision, so the count stays as small
            # as a keypad's (a count of thousands would cost what no site sees).
            ValidatorConfig(
                lockout_failures=10**9,
                site_lockout_failures=10**9,
                lockout_window_s=0.001,
                site_lockout_window_s=0.001,
            ),
        ),
    )


def prepare(v: Validator, pin: bytes) -> None:
    """What the daemon does after every change of the data: the view, then the validator's
    index of retired secrets."""
    v.judge(CredentialKind.CODE, pin, "lock0")  # the view
    asyncio.run(v.refresh())


def daemon_validator(store: Store) -> tuple[Validator, str]:
    """A validator on the daemon's clock: the system's wall and monotonic clocks, the
    kernel's sync state asked through ``adjtimex`` (not a stub), the time trust assessed on
    every decision. Where the kernel says its clock is not synchronised (a container without
    NTP), the cloud's ``Date`` vouches for it, as after any sync; the grants' windows are
    around now. Returns it with what the kernel said."""
    system = SystemTime()
    trust = TimeTrust(system, store.meta, TimeConfig())  # the real kernel_clock_synchronised
    kernel = kernel_clock_synchronised()
    if kernel is not True:
        trust.observe_cloud_time(system.now())
    verdict = trust.assess()
    v = validator(store, HonestClock(trust, system), trust)
    prepare(v, b"0")
    how = (
        f"kernel synchronised: {kernel}, clock trusted: {verdict.trusted}"
        + ("" if kernel else " (on the cloud's word)")
    )
    return v, how


def workload(pins: list[bytes], n: int, seed: int = 1) -> list[tuple[bytes, str]]:
    """The right lock for the credential nine times in ten, else a PIN nobody holds."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(len(pins))
        pin = pins[i] if rng.random() < 0.9 else b"99999999"
        out.append((pin, f"lock{(i // 2) % LOCKS}"))
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    rate: float
    """Decisions a second (the sum of the timed calls)."""
    median_us: float
    p99_us: float
    cpu_rate: float | None = None
    """Decisions a second of this thread's CPU time over the whole run (the timing's own clock
    reads included): what other processes on the box take from the wall figure, they do not
    take from this one."""


def timed(call: Callable[[bytes, str], object], work: list[tuple[bytes, str]]) -> Figures:
    lat = []
    clock = time.perf_counter
    cpu = time.thread_time()
    for pin, lock in work:
        t0 = clock()
        call(pin, lock)
        lat.append(clock() - t0)
    cpu = time.thread_time() - cpu
    lat.sort()
    return Figures(
        len(lat) / sum(lat),
        statistics.median(lat) * 1e6,
        lat[max(0, int(len(lat) * 0.99) - 1)] * 1e6,
        len(lat) / cpu if cpu > 0 else None,
    )


async def grouped(
    v: Validator, work: list[tuple[bytes, str]], start: datetime, doors: int = 64
) -> tuple[float, list[float]]:
    """``work`` decided by ``doors`` doors at once, each asking again once answered, the k-th
    decision at ``start`` + k ms: the wall time per decision, and each decision's time from
    asking to its answer (seconds)."""
    code = CredentialKind.CODE
    lat: list[float] = []
    clock = time.perf_counter
    ms = timedelta(milliseconds=1)
    at = [start + k * ms for k in range(len(work))]

    async def door(first: int) -> None:
        for k in range(first, len(work), doors):
            pin, lock = work[k]
            t0 = clock()
            await v.decide_durably(code, pin, lock, t=at[k])
            lat.append(clock() - t0)

    t0 = clock()
    await asyncio.gather(*(door(i) for i in range(doors)))
    total = clock() - t0
    return total / len(work), lat


@dataclass(frozen=True, slots=True)
class Recorded:
    per: float
    """Seconds a decision (median of the rounds)."""
    group: float
    """Decisions a commit."""
    wait: Figures
    """Each door's wait for its answer, over all rounds."""
    floor: float
    """Seconds a row of the floor (median of its measurements)."""
    floors: list[float]
    ratios: list[float]
    """Each round's time a decision over the mean of the floors just before and after it."""
    loop_cpu: float
    """CPU seconds a decision of the event loop's thread (deciding, recording, waking)."""
    writer_cpu: float
    """CPU seconds a decision of the store's writing thread (the group's transaction)."""

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def recorded_rounds(
    v: Validator,
    store: Store,
    clock: FakeClock,
    work: list[tuple[bytes, str]],
    doors: int = 64,
    rounds: int = 5,
) -> Recorded:
    """``work`` decided by ``doors`` doors in ``rounds`` rounds, the floor measured before
    each round and after the last (on this box the floor of one measurement swings by 2-4x
    while other work runs): medians, and each round's ratio to the floors beside it."""
    size = max(1, len(work) // rounds)
    floors = [floor_per_row(store, clock.now())]
    pers: list[float] = []
    ratios: list[float] = []
    lat: list[float] = []
    decided = groups = 0
    loop_cpu = writer_cpu = 0.0
    for k in range(rounds):
        part = work[k * size : (k + 1) * size]
        before = store.decisions.groups
        cpu, writer = time.thread_time(), writer_cpu_time()
        per, waits = asyncio.run(grouped(v, part, clock.now(), doors))
        loop_cpu += time.thread_time() - cpu
        writer_cpu += writer_cpu_time() - writer
        groups += store.decisions.groups - before
        decided += len(part)
        clock.advance(seconds=len(part) / 1000)
        floors.append(floor_per_row(store, clock.now()))
        pers.append(per)
        ratios.append(per / ((floors[-2] + floors[-1]) / 2))
        lat.extend(waits)
    lat.sort()
    wait = Figures(
        1 / statistics.mean(pers),
        statistics.median(lat) * 1e6,
        lat[max(0, int(len(lat) * 0.99) - 1)] * 1e6,
    )
    return Recorded(
        statistics.median(pers),
        decided / groups,
        wait,
        statistics.median(floors),
        floors,
        ratios,
        loop_cpu / decided,
        writer_cpu / decided,
    )


def writer_cpu_time() -> float:
    """CPU seconds of the store's writing thread so far (0 before it exists)."""
    for thread in threading.enumerate():
        if thread.name.startswith("lockgate-store") and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


def floor_per_row(store: Store, t: datetime, batches: int = 30) -> float:
    """Seconds per outbox row committed :data:`FLOOR_BATCH` at a time (synchronous=FULL)."""
    events = [
        AccessEvent(AccessEvent.new_id(), t, "access_denied", "lock0", "gateway", "code")
        for _ in range(FLOOR_BATCH * batches)
    ]
    t0 = time.perf_counter()
    for k in range(0, len(events), FLOOR_BATCH):
        store.outbox.add(events[k : k + FLOOR_BATCH])
    return (time.perf_counter() - t0) / len(events)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def report(name: str, f: Figures) -> None:
    cpu = "" if f.cpu_rate is None else f"   ({f.cpu_rate:,.0f}/s of CPU time)"
    print(
        f"{name:<44} {f.rate:>10,.0f}/s   median {f.median_us:7.1f} µs   p99 {f.p99_us:7.1f} µs"
        f"   [load {loadavg()}]{cpu}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--credentials", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=50_000)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    args = ap.parse_args()
    if args.quick:
        args.credentials, args.decisions = 1_000, 400
    t = datetime.now(UTC).replace(microsecond=0)  # the grants run around the real now
    print(f"load average {loadavg()}")
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "db", SecretRef(file=Path(d) / "key"))
        t0 = time.perf_counter()
        pins = build(store, args.credentials, t)
        print(f"loaded {len(pins):,} active credentials in {time.perf_counter() - t0:.1f} s")
        clock = FakeClock(t)
        fake = validator(store, clock, TimeTrust(clock, store.meta, TimeConfig(), lambda: True))
        code = CredentialKind.CODE
        work = workload(pins, args.decisions)
        honest, how = daemon_validator(store)
        judged = timed(lambda p, k: honest.judge(code, p, k), work)
        report("decision alone (judge, nothing recorded)", judged)
        print(f"  on the daemon's clock: {how}")
        print(
            f"  against the goal (200k/s, p99 20 µs): {200_000 / judged.rate:.2f}x the time "
            f"per decision, p99 {judged.p99_us / 20:.2f}x"
        )
        prepare(fake, pins[0])
        on_fake = timed(lambda pin, lock: fake.judge(code, pin, lock), work)
        report("the same on a fake clock (no clock read)", on_fake)
        one_each = timed(
            lambda p, k: fake.decide(code, p, k, t=clock.advance(seconds=0.001)),
            work[: args.decisions // 20],
        )
        report("recorded, one FULL commit each (decide)", one_each)
        recorded = work[: args.decisions // 2]
        for doors in (64, 128):
            r = recorded_rounds(fake, store, clock, recorded, doors)
            print(
                f"{f'recorded, group commit, {doors} doors at once':<44} {1 / r.per:>10,.0f}/s   "
                f"{r.per * 1e6:.1f} µs a decision, {r.group:.1f} a commit"
            )
            report("  each door's wait for its answer", r.wait)
            print(
                f"  floor (outbox rows {FLOOR_BATCH} a FULL commit, measured {len(r.floors)} "
                f"times between the rounds): median {r.floor * 1e6:.1f} µs a row "
                f"(from {min(r.floors) * 1e6:.1f} to {max(r.floors) * 1e6:.1f})"
            )
            print(
                f"  [load {loadavg()}] group commit / floor: {r.ratio:.2f}x (median of "
                f"{len(r.ratios)} rounds, each against the floors just before and after it: "
                + ", ".join(f"{x:.2f}" for x in r.ratios)
                + f"); one FULL commit each is {1 / one_each.rate / r.floor:.1f}x"
            )
            print(
                f"  CPU a decision: event loop {r.loop_cpu * 1e6:.1f} µs, writing thread "
                f"{r.writer_cpu * 1e6:.1f} µs (its fsync's kernel time included)"
            )
        store.close()
    print(f"load average {loadavg()}")


if __name__ == "__main__":
    main()
