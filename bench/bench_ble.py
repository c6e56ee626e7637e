"""Pushing 200 PIN codes to one BLE lock: GATT round trips per code, and the time it takes.

Everything runs over the simulated radio (bumble controllers on a virtual link) through the
real bleak API, exactly as in tests/ble. Round trips are *counted on the air* (the virtual
link decodes every ATT PDU the gateway sends), not timed: an ATT request (MTU exchange,
discovery, read, CCCD write, write with response) waits for its response, which is one round
trip; write commands and notifications travel one way. The push does what the reconciler
does for 200 new codes: connect to the commissioned lock (the adapter holds its attribute table
from commissioning, so the services come from that cache; the cold row clears it first and
discovers on the air), read what the lock holds, put the codes in batches of the lock's
``max_batch``, read back. The goal is <= 0.1 round trips per code. Times are of the simulated
link (no air time): they measure the gateway's and the simulated lock's own work.

Run: .venv/bin/python -m bench.bench_ble
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lockgate_sim.ble.backend import backends_for
from lockgate_sim.ble.central import BumbleCentral
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock, SimLockSpec

from drivers.base import Credential, CredentialKind, DriverContext, TimeWindow
from drivers.ble.adapter import AdapterRegistry, BleakBackends
from drivers.ble.driver import BleDriver
from drivers.ble.options import BleOptions

CODES = 200
SUBSCRIPTIONS = 2
"""CCCD writes at connect: the response and the status characteristics."""


class Keys(dict[str, bytes]):
    def put(self, name: str, value: bytes) -> None:
        self[name] = value

    def delete(self, name: str) -> None:
        self.pop(name, None)


@dataclass
class Result:
    label: str
    att_requests: int
    setup_requests: int
    exchanges: int
    write_commands: int
    notifications: int
    seconds: float
    held: int


async def push(
    label: str, *, mtu: int, write_mode: str, cached: bool = True, codes: int = CODES
) -> Result:
    def now() -> datetime:
        return datetime.now(UTC)

    radio = VirtualRadio()
    spec = SimLockSpec(
        slots=250, max_batch=100, enforces_time_windows=True, kinds=frozenset(CredentialKind)
    )
    sim = SimLock("bench", spec, now=now)
    async with BleLock(sim, radio.device("lock"), max_mtu=mtu) as lock:
        central = BumbleCentral(radio.device("gateway"))
        await central.start()
        backends = backends_for(central)
        registry = AdapterRegistry(BleakBackends(backends.client, backends.scanner))
        options = BleOptions(
            device_id=lock.device_id.hex(),
            write_with_response=write_mode,
        )
        driver = BleDriver(
            "bench", options, DriverContext(now=now, keystore=Keys()), adapters=registry
        )
        gateway = str(central.device.random_address)
        async with driver:
            await driver.commission(lock.pairing_secret)
            caps = await driver.capabilities()
            await driver.disconnect()
            start = now()
            window = TimeWindow(start, start + timedelta(days=7))
            creds = [
                Credential(
                    f"guest-{i:03d}",
                    CredentialKind.CODE,
                    str(400000 + i).encode(),
                    os.urandom(8),
                    window,
                )
                for i in range(codes)
            ]
            if not cached:
                central.gatt_cache.clear()
            radio.air.reset()
            before = driver.conn.link_stats.reads
            exchanges_before = driver.carrier.stats.datagrams_sent
            t0 = time.perf_counter()
            await driver.connect()
            await driver.list_credentials()
            for i in range(0, codes, caps.max_batch):
                result = await driver.put_credentials(creds[i : i + caps.max_batch])
                assert result.ok, result.failures
            held = await driver.list_credentials()
            seconds = time.perf_counter() - t0
            air = radio.air
            # every ATT request that does not carry a datagram segment sets the link up:
            # MTU exchange, discovery, the device-info and status reads, the two subscriptions
            carrying = air.write_requests.get(gateway, 0) - SUBSCRIPTIONS
            setup = air.requests.get(gateway, 0) - carrying
            assert driver.conn.link_stats.reads - before == 2  # device info, then status
        await central.close()
    return Result(
        label,
        air.requests.get(gateway, 0),
        setup,
        driver.carrier.stats.datagrams_sent - exchanges_before,
        air.write_commands.get(gateway, 0),
        air.notifications.get(str(lock.device.random_address), 0),
        seconds,
        len(held),
    )


async def runs(codes: int) -> list[Result]:
    return [
        await push(
            "MTU 247, last segment acknowledged (default)", mtu=247, write_mode="last", codes=codes
        ),
        await push("MTU 23,  last segment acknowledged", mtu=23, write_mode="last", codes=codes),
        await push("MTU 247, every segment acknowledged", mtu=247, write_mode="all", codes=codes),
        await push(
            "MTU 247, last segment acknowledged, GATT table not cached (discovered on the air)",
            mtu=247,
            write_mode="last",
            cached=False,
            codes=codes,
        ),
    ]


def measure(codes: int = CODES) -> dict[str, float]:
    """The default push and the uncached one, for bench/run_all.py."""
    done = asyncio.run(runs(codes))
    default, all_acked, cold = done[0], done[2], done[3]
    return {
        "codes": codes,
        "round_trips": default.att_requests,
        "setup": default.setup_requests,
        "exchanges": default.exchanges,
        "ms": default.seconds * 1000,
        "cold_round_trips": cold.att_requests,
        "cold_setup": cold.setup_requests,
        "all_acked_round_trips": all_acked.att_requests,
    }


async def main(codes: int = CODES) -> None:
    done = await runs(codes)
    print(
        f"Pushing {codes} PIN codes to one commissioned BLE lock (connect, list, put, read back;"
        " goal <= 0.100 GATT round trips per code)"
    )
    for r in done:
        assert r.held == codes
        print(f"\n{r.label}")
        print(
            f"  GATT round trips (ATT requests on the air): {r.att_requests:4d}"
            f"  = {r.att_requests / codes:.3f} per code"
        )
        print(
            f"    link setup (MTU, discovery, info + status reads, 2 subscriptions):"
            f" {r.setup_requests};"
            f" carrying datagrams: {r.att_requests - r.setup_requests}"
        )
        print(
            f"  lock-protocol exchanges (request -> reply): {r.exchanges:4d}"
            f"  = {r.exchanges / codes:.3f} per code"
        )
        print(f"  one-way: {r.write_commands} write commands, {r.notifications} notifications")
        print(f"  time for {codes} codes over the simulated link: {r.seconds * 1000:.0f} ms")
    default, cold = done[0], done[-1]
    print(
        f"\nsummary: {default.att_requests / codes:.3f} GATT round trips per code by default"
        f" (MTU 247, last segment acknowledged, cached table; goal <= 0.100),"
        f" {cold.att_requests / codes:.3f} with the table discovered on the air"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=CODES)
    parser.add_argument("--quick", action="store_true", help="20 codes: checks the bench runs")
    args = parser.parse_args()
    asyncio.run(main(20 if args.quick else args.codes))
