"""A simulated Nuki lock in another process (``python -m lockgate_sim.ble serve --nuki``),
reached by the Nuki driver over HCI/TCP through the backend named in its options."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from drivers.base import DriverContext
from drivers.ble.adapter import AdapterRegistry
from drivers.nuki.driver import NukiDriver
from drivers.nuki.options import NukiOptions
from tests.ble.conftest import MemoryKeyStore
from tests.ble.test_standalone import BACKEND, READY
from tests.nuki.test_driver import code


@pytest.fixture
async def simulator() -> AsyncIterator[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "lockgate_sim.ble", "serve", "--nuki", "Front", "--hci-port", "0"),
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(READY):
            line = await proc.stdout.readline()
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_the_nuki_driver_reaches_a_simulated_nuki_in_another_process(
    simulator: dict[str, Any],
) -> None:
    lock = simulator["nuki"]["Front"]
    assert lock["pairing_mode"] is True
    options = NukiOptions(
        address=lock["address"],
        adapter=simulator["hci"]["hci0"],
        backend=BACKEND,
        scan_timeout=5,
        connect_timeout=5,
    )
    ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=MemoryKeyStore())
    async with NukiDriver("front", options, ctx, adapters=AdapterRegistry()) as driver:
        await driver.commission(str(lock["security_pin"]))
        codes = [code(f"m{i}", f"{482911 + i}") for i in range(8)]
        assert (await driver.put_credentials(codes)).ok
        assert sorted(c.credential_id for c in await driver.list_credentials()) == [
            f"m{i}" for i in range(8)
        ]
        await driver.unlock()
        assert (await driver.status()).bolt.value == "unlocked"
