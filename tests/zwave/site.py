"""A site of Z-Wave locks: the fake cloud and the gateway (in this process) over the rig.

Locks "front" (node 2) and "back" (node 3) serve space A; "office" (node 4, when the rig has
it) serves space B. All of them share one Z-Wave JS server, so one websocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockgate_sim.zwave_rig import ZWaveRig

from drivers.registry import default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.daemon import Gateway
from gateway.reconciler import LockReconciler
from gateway.store.sync_state import SyncStatus
from tests.e2e.site import site_config, write_secret

NODES = {"front": 2, "back": 3, "office": 4}
START = 30.0


@dataclass
class ZWaveSite:
    cloud: FakeCloudServer
    gateway: Gateway
    clock: FakeClock
    rig: ZWaveRig
    space_a: str
    space_b: str
    user: str
    nodes: dict[str, int]

    def states(self, lock_id: str) -> dict[str, SyncStatus]:
        return {mid: s.state for mid, s in self.gateway.store.sync_states.for_lock(lock_id).items()}

    def applied(self, lock_id: str) -> set[str]:
        return {mid for mid, s in self.states(lock_id).items() if s is SyncStatus.APPLIED}

    async def until(self, lock_id: str, predicate: Callable[[], bool], wait: float) -> None:
        async with asyncio.timeout(wait):
            await self.gateway.locks[lock_id].wait_for(predicate)

    async def sync(self) -> None:
        async with asyncio.timeout(10):
            await self.gateway.sync_loop.sync_now()

    def grant(self, *, space: str, code: str, **kw: Any) -> tuple[str, str]:
        """A grant with one PIN: (grant id, access method id)."""
        g = self.cloud.state.grants.create(
            user_identity_id=self.user,
            space_ids=[space],
            requested_access_methods=[{"mode": "code", "code": code}],
            **kw,
        )
        return g["access_grant_id"], g["access_method_ids"][0]

    def outbox(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.gateway.store.outbox.entries()]

    async def codes(self, lock_id: str) -> set[str]:
        """The codes the mock lock holds, read from the lock, not through Lockgate."""
        return {code for _, code in (await self.rig.slots(self.nodes[lock_id])).values()}


def lock_entries(
    rig: ZWaveRig,
    spaces: dict[str, str],
    nodes: dict[str, int] | None = None,
    per_lock: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    return [
        {
            "id": lock_id,
            "space_ids": [spaces[lock_id]],
            "driver": {
                "type": "zwave",
                "server": rig.url,
                "node_id": node,
                "reconnect_min": 0.2,
                "reconnect_max": 2.0,
                **(per_lock or {}).get(lock_id, {}),
            },
        }
        for lock_id, node in (nodes or NODES).items()
        if node in rig.node_ids
    ]


@asynccontextmanager
async def zwave_site(
    tmp: Path,
    clock: FakeClock,
    rig: ZWaveRig,
    *,
    nodes: dict[str, int] | None = None,
    per_lock: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[ZWaveSite]:
    async with FakeCloudServer(now=clock.now) as cloud:
        state = cloud.state
        space_a = state.add_space(name="Building A")["space_id"]
        space_b = state.add_space(name="Building B")["space_id"]
        user = state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
        key_file = write_secret(tmp / "api-key", cloud.api_key)
        spaces = {"front": space_a, "back": space_a, "office": space_b}
        entries = lock_entries(rig, spaces, nodes, per_lock)
        cfg = site_config(tmp, cloud.url, key_file, entries)
        async with Gateway(
            cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True
        ) as gw, gw.serving():
            site = ZWaveSite(cloud, gw, clock, rig, space_a, space_b, user, nodes or NODES)
            await site.sync()
            # Every lock connected and read once (a cold start reads the lock's limits and
            # sets its clock): from here on a change is a change, not a start-up.
            for lock_id, reconciler in gw.locks.items():

                def read_once(r: LockReconciler = reconciler) -> bool:
                    return r.health.passes >= 1

                await site.until(lock_id, read_once, START)
            yield site
