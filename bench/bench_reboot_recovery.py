"""What waiting out an unauthenticated ERROR costs: the first request after a lock reboot.

A lock that rebooted answers the gateway's next request with a plain ``ERROR(NO_SESSION)``,
which anyone on the bus could forge. The gateway keeps waiting for an authenticated reply until
the attempt's deadline before it believes it and opens a new session (docs/protocol.md §4).
Prints the median time of a status request in a live session (the floor, same run) and of the
first one after a reboot, on the simulated RS-485 bus paced at 115 200 baud.
Run: ``.venv/bin/python -m bench.bench_reboot_recovery [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lockgate_sim.serial_testing import MemoryKeyStore, commission_all, serial_site

from drivers.base import DriverContext
from drivers.serial.driver import SerialDriver


async def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        async with serial_site(
            1, state_dir=Path(d), baud=115_200, engine_options={"boot_time": 0.0}
        ) as site:
            keystore = MemoryKeyStore()
            options = await commission_all(site, keystore)
            ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=keystore)
            driver = SerialDriver("lock-1", options["lock-1"], ctx)
            try:
                await driver.connect()
                live, rebooted = [], []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    await driver.status()
                    live.append(time.perf_counter() - t0)
                    site.locks["lock-1"].reboot()
                    t0 = time.perf_counter()
                    await driver.status()
                    rebooted.append(time.perf_counter() - t0)
            finally:
                await driver.close()
    floor, after = statistics.median(live), statistics.median(rebooted)
    print(f"status in a live session        median {floor * 1e3:7.1f} ms (floor)")
    print(f"first status after a reboot     median {after * 1e3:7.1f} ms ({after / floor:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    args = ap.parse_args()
    asyncio.run(run(2 if args.quick else args.rounds))


if __name__ == "__main__":
    main()
