"""Pushing 100 keypad codes to one Nuki lock: round trips per code, against the floor.

Over the simulated radio through the real bleak API, as in tests/nuki: the Nuki driver
commissions a simulated Nuki lock, then does what the reconciler does for 100 new codes (read
the lock's codes, add the codes in batches of ``max_batch``, read back). Round trips are counted
on the air (ATT write requests and indications each wait for their answer). Nuki's protocol
takes a challenge and a command per code: the floor is one sealed state request (write +
indication) timed in the same run, and the figure is the push's time per code as a multiple of
that floor.

Run: .venv/bin/python -m bench.bench_nuki
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from lockgate_sim.ble.backend import backends_for
from lockgate_sim.ble.central import BumbleCentral
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.nuki.gatt import NukiBleLock
from lockgate_sim.nuki.model import NukiLockModel

from drivers.base import Credential, CredentialKind, DriverContext
from drivers.ble.adapter import AdapterRegistry, BleakBackends
from drivers.nuki.driver import NukiDriver
from drivers.nuki.options import NukiOptions

CODES = 100


class Keys(dict[str, bytes]):
    def put(self, name: str, value: bytes) -> None:
        self[name] = value

    def delete(self, name: str) -> None:
        self.pop(name, None)


def codes(count: int) -> list[Credential]:
    out = []
    for i in range(count):
        rest, n = "", i
        for _ in range(5):  # i in base 9, written with the digits 1-9
            n, r = divmod(n, 9)
            rest = "123456789"[r] + rest
        digits = "4" + rest
        out.append(Credential(f"m{i}", CredentialKind.CODE, digits.encode(), f"{i:08d}".encode()))
    return out


async def main(count: int = CODES) -> None:
    radio = VirtualRadio()
    central = BumbleCentral(radio.device("gateway"))
    await central.start()
    backends = backends_for(central)
    registry = AdapterRegistry(BleakBackends(backends.client, backends.scanner))
    model = NukiLockModel(name="Bench", security_pin=4711, pairing_mode=True)
    async with NukiBleLock(model, radio.device("nuki")) as lock:
        options = NukiOptions(address=lock.address, scan_timeout=2, connect_timeout=2)
        ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=Keys())
        async with NukiDriver("bench", options, ctx, adapters=registry) as driver:
            await driver.commission("4711")
            floor = []
            for _ in range(20):
                t = time.perf_counter()
                await driver.status()
                floor.append(time.perf_counter() - t)
            radio.air.reset()
            batch = (await driver.capabilities()).max_batch
            creds = codes(count)
            t = time.perf_counter()
            await driver.list_credentials()
            for i in range(0, count, batch):
                result = await driver.put_credentials(creds[i : i + batch])
                assert result.ok, result.failures
            held = await driver.list_credentials()
            seconds = time.perf_counter() - t
            assert len(held) == count
            gw = str(central.device.random_address)
            lk = str(lock.device.random_address)
            writes = radio.air.write_requests.get(gw, 0)
            indications = radio.air.indications.get(lk, 0)
    await central.close()
    per_code = seconds / count
    state = statistics.median(floor)
    print(f"{count} keypad codes to one Nuki lock (batches of {batch}), from a read to a read-back")
    print(
        f"  write requests {writes} ({writes / count:.2f} per code), "
        f"indications {indications} ({indications / count:.2f} per code)"
    )
    print(f"  {seconds * 1000:.0f} ms in all, {per_code * 1000:.2f} ms per code")
    print(f"  floor: one sealed state request {state * 1000:.2f} ms (median of 20)")
    print(f"  per code / floor = {per_code / state:.2f} (2 exchanges per code: challenge + Add)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=CODES)
    parser.add_argument("--quick", action="store_true", help="5 codes: checks the bench runs")
    args = parser.parse_args()
    asyncio.run(main(5 if args.quick else args.codes))
