"""Run by tests/core/test_group_commit.py: decides for 24 doors at once, without end, printing
``<event_id> <reason>`` for each decision as soon as its door would be answered. The test
kills it with SIGKILL and checks the store.

Run: ``python -m tests.core.group_commit_child DIR``
"""

from __future__ import annotations

import asyncio
import sys
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

DOORS = 24


async def main(path: Path) -> None:
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = FakeClock(t)
    store = Store.open(path / "lockgate.db", SecretRef(file=path / "store.key"))
    grant = Grant("g1", t - timedelta(hours=1), t + timedelta(days=1), frozenset({"space-a"}))
    method = AccessMethod("m1", "g1", "code", secret=b"424242")
    store.cloud.apply_snapshot(CloudSnapshot([grant], [method], [], {}, []), t)
    locks = [f"door-{i}" for i in range(DOORS)]
    space = frozenset({"space-a"})
    scopes = {lid: LockScope(lid, space, frozenset(), frozenset()) for lid in locks}
    cfg = TimeConfig()
    limits = ValidatorConfig(
        lockout_failures=10**9, site_lockout_failures=10**9, site_lockout_window_s=10**9
    )
    v = Validator(
        store,
        ViewCache(store).current,
        scopes,
        clock,
        TimeTrust(clock, store.meta, cfg, kernel=lambda: True),
        cfg,
        LockoutPolicy(store.lockouts, limits),
    )

    async def door(i: int) -> None:
        n = 0
        while True:
            n += 1
            pin = b"424242" if n % 2 else f"{i:03d}{n:06d}".encode()
            d = await v.decide_durably(CredentialKind.CODE, pin, locks[i])
            sys.stdout.write(f"{d.event_id} {d.reason}\n")
            sys.stdout.flush()

    await asyncio.gather(*(door(i) for i in range(DOORS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
