"""The Z-Wave rig, one per test module (a start costs 10-20 s): zwave-js's mock locks and a
Z-Wave JS server, from ``firmware-sim/zwave`` (installed by ``scripts/bootstrap.sh``).

A module sets ``RIG_S2 = True`` for locks included with S2 Access Control, ``RIG_LOCKS`` and
``RIG_SLOTS`` for another site. Tests of a module share its event loop (the rig lives in it), so
the suite's leaked-task check is repeated here on that loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from lockgate_sim.zwave_rig import ZWaveRig

from drivers.base import DriverContext
from drivers.zwave.connection import ServerRegistry
from drivers.zwave.driver import ZWaveDriver
from drivers.zwave.options import ZWaveOptions

WAIT = 20.0
"""Upper bound for awaiting something on the rig (S2 triples a command's cost)."""


class MemoryKeyStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def put(self, name: str, value: bytes) -> None:
        self.data[name] = value

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [
        t
        for t in asyncio.all_tasks() - before
        if t is not asyncio.current_task()
        and not t.done()
        and not t.get_name().startswith("zwave-rig-")  # the module's rig, restarted by a test
    ]
    if leaked:
        for t in leaked:
            t.cancel()
        pytest.fail(f"test leaked tasks: {[t.get_name() for t in leaked]}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ZWaveRig]:
    module = request.module
    async with ZWaveRig(
        tmp_path_factory.mktemp("zwave-rig"),
        locks=getattr(module, "RIG_LOCKS", 2),
        slots=getattr(module, "RIG_SLOTS", 30),
        s2=getattr(module, "RIG_S2", False),
    ) as r:
        yield r


def make_driver(
    rig: ZWaveRig,
    node_id: int,
    *,
    keystore: MemoryKeyStore | None = None,
    servers: ServerRegistry | None = None,
    lock_id: str | None = None,
    now: Callable[[], datetime] | None = None,
    **options: object,
) -> ZWaveDriver:
    """``now``: the driver's wall clock (a test that depends on time passing moves a
    ``FakeClock`` instead of hoping enough real time went by)."""
    opts = ZWaveOptions.model_validate({"server": rig.url, "node_id": node_id, **options})
    ctx = DriverContext(
        now=now or (lambda: datetime.now(UTC)), keystore=keystore or MemoryKeyStore()
    )
    return ZWaveDriver(lock_id or f"zw-{node_id}", opts, ctx, servers=servers or ServerRegistry())
