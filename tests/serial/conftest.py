"""Serial tests: the real driver on real pyserial, a real pty, simulated locks behind it.

The suite-wide ``tests/conftest.py`` checks for leaked tasks.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "firmware-sim"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from lockgate_sim.serial_bus import SerialSite  # noqa: E402
from lockgate_sim.serial_testing import (  # noqa: E402
    MemoryKeyStore,
    commission_all,
    serial_options,
    serial_site,
)

from drivers.base import Decider, DriverContext  # noqa: E402
from drivers.serial.buses import BusRegistry  # noqa: E402
from drivers.serial.driver import SerialDriver  # noqa: E402
from drivers.serial.options import SerialOptions  # noqa: E402

FAST = {"reply_ms": 40}
"""The simulated locks answer at once; announcing 40 ms keeps retransmission tests short."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[SerialSite]:
    async with serial_site(
        2, state_dir=tmp_path, link=tmp_path / "ttyRS485", engine_options=FAST
    ) as s:
        yield s


@pytest.fixture
def keystore() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def buses() -> BusRegistry:
    return BusRegistry()


@pytest.fixture
async def commissioned(
    site: SerialSite, keystore: MemoryKeyStore, buses: BusRegistry
) -> dict[str, SerialOptions]:
    return await commission_all(site, keystore, buses=buses, reconnect_max=0.2)


MakeDriver = Callable[..., Awaitable[SerialDriver]]


@pytest.fixture
async def make_driver(
    site: SerialSite, keystore: MemoryKeyStore, buses: BusRegistry
) -> AsyncIterator[MakeDriver]:
    """``await make_driver("lock-1", start=False, decide=..., **options)``; closed at teardown."""
    async with AsyncExitStack() as stack:

        async def make(
            lock_id: str,
            *,
            start: bool = False,
            decide: Decider | None = None,
            events_waiting: Callable[[], None] | None = None,
            keys: MemoryKeyStore | None = None,
            **overrides: Any,
        ) -> SerialDriver:
            overrides.setdefault("reconnect_max", 0.2)
            ctx = DriverContext(now=utcnow, keystore=keys or keystore)
            if decide is not None:
                ctx.decide = decide
            if events_waiting is not None:
                ctx.events_waiting = events_waiting
            driver = SerialDriver(lock_id, serial_options(site, lock_id, **overrides), ctx,
                                  buses=buses)
            stack.push_async_callback(driver.close)
            if start:
                await driver.start()
            return driver

        yield make
