"""Time to push PIN codes over the serial link, against the wire limit (300, 1,000 and 3,000
codes in one run by default; the goal is >= 90% at 1,000 codes and 115,200 baud).

The simulated bus paces its wire to the baud rate (half duplex: the gateway's bytes and the
lock's replies share it), so elapsed time includes byte times, turnarounds, the lock's
processing and retransmissions. The wire limit is ``bytes on the wire x 10 / baud`` (8N1); the
figure reported is ``wire limit / elapsed`` (100% = the wire never idle).

    .venv/bin/python -m bench.bench_serial [--codes 300,1000,3000]
        [--baud 115200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "firmware-sim"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from lockgate_sim.lock import SimLockSpec  # noqa: E402
from lockgate_sim.serial_testing import MemoryKeyStore, commission_all, serial_site  # noqa: E402

from drivers.base import Credential, CredentialKind, DriverContext  # noqa: E402
from drivers.lockproto.convert import credential_to_record  # noqa: E402
from drivers.serial.buses import BusRegistry  # noqa: E402
from drivers.serial.driver import SerialDriver  # noqa: E402


def make_codes(n: int) -> list[Credential]:
    return [
        Credential(
            credential_id=str(uuid.UUID(int=i + 1)),
            kind=CredentialKind.CODE,
            secret=f"{100000 + i}".encode(),
            tag=i.to_bytes(8, "little"),
        )
        for i in range(n)
    ]


async def bench(codes: int, baud: int, max_batch: int, max_message: int) -> dict[str, float]:
    spec = SimLockSpec(slots=codes + 10, max_batch=max_batch)
    # Flash stays in memory (journal lines kept in RAM): an fsync per slot would time the
    # simulator's disk, not the link.
    async with serial_site(
        1, spec=spec, baud=baud, engine_options={"max_message": max_message}
    ) as site:
        keystore = MemoryKeyStore()
        buses = BusRegistry()
        options = await commission_all(site, keystore, buses=buses, baud=baud)
        ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=keystore)
        driver = SerialDriver("lock-1", options["lock-1"], ctx, buses=buses)
        try:
            caps = await driver.capabilities()  # no poller: the bench measures pushes only
            batch = make_codes(codes)
            stats = site.bus.stats
            before = stats.wire_bytes
            t0 = time.perf_counter()
            for i in range(0, len(batch), caps.max_batch):
                result = await driver.put_credentials(batch[i : i + caps.max_batch])
                assert result.ok, result.failures
            elapsed = time.perf_counter() - t0
            wire = stats.wire_bytes - before
            assert len(site.locks["lock-1"].list_credentials()) == codes
            session = driver.session
            assert session is not None
            retransmissions = session.stats.retransmissions
        finally:
            await driver.close()
    payload = sum(credential_to_record(c).size(with_secret=True) for c in batch)
    limit = wire * 10 / baud
    return {
        "elapsed": elapsed,
        "wire_bytes": wire,
        "wire_limit": limit,
        "ratio": limit / elapsed,
        "payload_bytes": payload,
        "retransmissions": retransmissions,
    }


def measure(codes: tuple[int, ...] = (300, 1000, 3000), baud: int = 115200) -> dict[int, float]:
    """Wire limit / elapsed for each count of codes (bench/run_all.py)."""
    return {n: asyncio.run(bench(n, baud, 100, 1024))["ratio"] for n in codes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--codes", default="300,1000,3000", help="comma-separated code counts")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--max-batch", type=int, default=100, help="the lock's max_batch")
    p.add_argument("--max-message", type=int, default=1024, help="the lock's max_message")
    p.add_argument("--quick", action="store_true", help="30 codes: checks the bench runs")
    args = p.parse_args()
    if args.quick:
        args.codes = "30"
    summary = []
    for codes in (int(n) for n in args.codes.split(",")):
        r = asyncio.run(bench(codes, args.baud, args.max_batch, args.max_message))
        summary.append(f"{codes} codes {100 * r['ratio']:.1f}%")
        print(
            f"{codes} PIN codes at {args.baud} baud (lock: max_batch {args.max_batch}, "
            f"max_message {args.max_message} B)\n"
            f"  elapsed      {r['elapsed']:.3f} s\n"
            f"  wire bytes   {r['wire_bytes']:.0f} (payload {r['payload_bytes']:.0f}, "
            f"{100 * r['payload_bytes'] / r['wire_bytes']:.1f}% of the wire)\n"
            f"  wire limit   {r['wire_limit']:.3f} s\n"
            f"  ratio        {100 * r['ratio']:.1f}% of the wire limit "
            f"({r['retransmissions']:.0f} retransmissions)"
        )
    print(f"wire limit / elapsed: {', '.join(summary)} (goal >= 90% at 1000 codes)")


if __name__ == "__main__":
    main()
