"""Suite-wide fixtures: a leaked-task check on every async test, a fake clock, and a store
(a real SQLite file in the test's own directory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.clock import FakeClock
from gateway.secrets import SecretRef
from gateway.store.store import Store


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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "lockgate.db", SecretRef(file=tmp_path / "store.key")) as s:
        yield s
