"""PIN codes per second onto one Z-Wave lock: through Lockgate against a bare client loop.

Both run in the same process against the same rig (zwave-js's mock lock under a real Z-Wave
JS server, firmware-sim/zwave), one after the other:

- **bare**: ``zwave-js-server-python`` alone, the loop an integrator writes: for each code,
  ``set_usercode`` then a User Code Get awaited from the lock (the cached value lags), compared.
- **Lockgate**: the whole gateway in this process (fake cloud, sync, planner, reconciler, the
  ``zwave`` driver with its slot map in the encrypted store): ``CODES`` grants created, one
  sync, timed from the sync until the store says every code is applied on the lock (each one
  set and confirmed by a Get, the slot map written before and after, a checksum per batch).

The lock's limits and clock are read once before the clock starts (the gateway's first pass).

Run: .venv/bin/python -m bench.bench_zwave [--s2] [--codes N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from lockgate_sim.zwave_rig import ZWaveRig
from zwave_js_server.client import Client
from zwave_js_server.const import CommandClass
from zwave_js_server.util.lock import clear_usercode, set_usercode

from drivers.registry import default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.config import parse_config
from gateway.daemon import Gateway
from gateway.store.sync_state import SyncStatus

NODE = 2


async def bare_loop(rig: ZWaveRig, codes: list[str]) -> float:
    async with aiohttp.ClientSession() as session:
        client = Client(rig.url, session)
        await client.connect()
        ready = asyncio.Event()
        listener = asyncio.create_task(client.listen(ready))
        await ready.wait()
        assert client.driver is not None
        node = client.driver.controller.nodes[NODE]
        started = time.perf_counter()
        for slot, code in enumerate(codes, start=1):
            await set_usercode(node, slot, code)
            got = await node.async_invoke_cc_api(
                CommandClass.USER_CODE, "get", slot, wait_for_result=True
            )
            assert got["userCode"] == code, slot
        elapsed = time.perf_counter() - started
        for slot in range(1, len(codes) + 1):
            await clear_usercode(node, slot)
        await client.disconnect()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    return elapsed


async def through_lockgate(rig: ZWaveRig, codes: list[str], tmp: Path) -> float:
    clock = FakeClock(datetime.now(UTC))
    async with FakeCloudServer(now=clock.now) as cloud:
        state = cloud.state
        space = state.add_space(name="Bench")["space_id"]
        user = state.add_user_identity(full_name="Bench")["user_identity_id"]
        (tmp / "api-key").write_text(cloud.api_key)
        (tmp / "api-key").chmod(0o600)
        cfg = parse_config(
            {
                "gateway_id": "bench",
                "cloud": {"endpoint": cloud.url, "api_key": {"file": str(tmp / "api-key")}},
                "store": {"path": str(tmp / "db"), "key": {"file": str(tmp / "store.key")}},
                "locks": [
                    {
                        "id": "door",
                        "space_ids": [space],
                        "driver": {"type": "zwave", "server": rig.url, "node_id": NODE},
                    }
                ],
            },
            default_registry(),
            "bench",
        )
        gateway = Gateway(cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True)
        async with gateway as gw, gw.serving():
            await gw.ready.wait()
            reconciler = gw.locks["door"]
            await reconciler.wait_for(lambda: reconciler.health.passes >= 1)
            for code in codes:
                state.grants.create(
                    user_identity_id=user,
                    space_ids=[space],
                    requested_access_methods=[{"mode": "code", "code": code}],
                )

            def all_applied() -> bool:
                rows = gw.store.sync_states.for_lock("door").values()
                return sum(r.state is SyncStatus.APPLIED for r in rows) == len(codes)

            started = time.perf_counter()
            await gw.sync_loop.sync_now()
            await reconciler.wait_for(all_applied)
            elapsed = time.perf_counter() - started
    held = sorted(code for _, code in (await rig.slots(NODE)).values())
    assert held == sorted(codes), "the lock does not hold exactly the codes"
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s2", action="store_true", help="the lock included with S2")
    parser.add_argument("--codes", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="3 codes: checks the bench runs")
    args = parser.parse_args()
    if args.quick:
        args.codes = 3
    codes = [f"{400000 + 7919 * i % 599999}" for i in range(args.codes)]
    with tempfile.TemporaryDirectory() as tmp:
        async with ZWaveRig(Path(tmp) / "rig", locks=1, slots=args.codes + 10, s2=args.s2) as rig:
            bare = await bare_loop(rig, codes)
            ours = await through_lockgate(rig, codes, Path(tmp))
    n = len(codes)
    print(f"Z-Wave, {n} PIN codes onto one lock ({'S2 Access Control' if args.s2 else 'no S2'})")
    print(f"  bare zwave-js-server-python set+get loop: {bare:6.2f} s  {n / bare:6.1f} codes/s")
    print(f"  through Lockgate (sync to all applied):   {ours:6.2f} s  {n / ours:6.1f} codes/s")
    print(f"  ratio Lockgate / bare: {bare / ours:.2f}  (goal >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main())
