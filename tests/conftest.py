"""Suite-wide fixtures: a leaked-task check on every async test, and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.clock import FakeClock


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    # Give cancelled tasks one turn of the loop to finish unwinding.
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()
    ]
    if leaked:
        for t in leaked:
            t.cancel()
        pytest.fail(f"test leaked tasks: {[t.get_name() for t in leaked]}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
