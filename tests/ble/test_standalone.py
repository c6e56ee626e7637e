"""The simulator as a standalone program: locks in another process, reached over HCI/TCP.

The gateway's driver loads ``lockgate_sim.ble.remote:hci_backends`` by name (as a config file
would say), runs a bumble host over the TCP transport, and talks to the lock through bleak.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Credential, CredentialKind, DriverContext
from drivers.ble.adapter import AdapterRegistry
from drivers.ble.driver import BleDriver
from drivers.ble.options import BleOptions
from tests.ble.conftest import MemoryKeyStore

BACKEND = "lockgate_sim.ble.remote:hci_backends"
READY = 30.0
"""Starting a Python process that imports bumble takes a few seconds on a loaded machine."""


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lockgate_sim.ble",
        "serve",
        "--lock",
        "front",
        "--hci-port",
        "0",
        "--hci-port",
        "0",
        "--state-dir",
        str(tmp_path / "flash"),
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


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockgate_sim.ble", *args, stdout=subprocess.PIPE
    )
    async with asyncio.timeout(READY):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_driver_reaches_a_lock_in_another_process(
    simulator: dict[str, Any], tmp_path: Path
) -> None:
    lock = simulator["locks"]["front"]
    options = BleOptions(
        device_id=lock["device_id"],
        adapter=simulator["hci"]["hci0"],
        backend=BACKEND,
        scan_timeout=5,
        connect_timeout=5,
    )
    ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=MemoryKeyStore())
    async with BleDriver("front", options, ctx, adapters=AdapterRegistry()) as driver:
        await driver.commission(lock["pairing_secret"])
        codes = [
            Credential(f"m{i}", CredentialKind.CODE, f"{800000 + i}".encode(), bytes(8))
            for i in range(50)
        ]
        assert (await driver.put_credentials(codes)).ok
        assert len(await driver.list_credentials()) == 50
        assert (await driver.status()).firmware == "lockgate-sim-ble 1.0"

        # a phone in a third process, on the simulator's second HCI endpoint
        key = tmp_path / "phone.key"
        code, public_key = await run("keygen", "--key", str(key))
        assert code == 0
        mobile = Credential("mk1", CredentialKind.MOBILE_KEY, public_key.strip().encode(), bytes(8))
        phone = ("phone", "--hci", simulator["hci"]["hci1"], "--key", str(key))
        assert (await driver.put_credentials([mobile])).ok
        code, out = await run(*phone, "--device-id", lock["device_id"])
        assert (code, json.loads(out)) == (0, {"allow": True, "reason": "valid"})
        assert (await driver.delete_credentials(["mk1"])).ok
        code, out = await run(*phone, "--device-id", lock["device_id"])
        assert code == 1  # no key on the lock, and this lock's gateway decides nothing here
