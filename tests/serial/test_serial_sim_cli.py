"""The simulated bus on its own: the command line, and the wire pacing the bench relies on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from lockgate_sim.serial_testing import MemoryKeyStore, commission_all, serial_site

from drivers.base import Credential, CredentialKind, DriverContext
from drivers.serial.buses import BusRegistry
from drivers.serial.driver import SerialDriver

ROOT = Path(__file__).resolve().parents[2]


async def test_command_line_prints_the_pty_and_the_pairing_secrets(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'firmware-sim'}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockgate_sim.serial_bus", "--locks", "3",
        "--state-dir", str(tmp_path), "--first-address", "4",
        stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(15):
            lines = [(await proc.stdout.readline()).decode().split() for _ in range(4)]
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await proc.wait()
    assert lines[0][0] == "pty" and lines[0][1].startswith("/dev/pts/")
    assert [(w[1], w[3], w[4]) for w in lines[1:]] == [
        ("lock-4", "4", "pairing"), ("lock-5", "5", "pairing"), ("lock-6", "6", "pairing")]
    assert all(len(w[6]) == 32 and w[5] == "pairing-secret" for w in lines[1:])
    assert proc.returncode == 0
    flash = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert flash == ["lock-4.json", "lock-5.json", "lock-6.json"]


async def test_paced_wire_takes_at_least_its_byte_time() -> None:
    baud = 115200
    async with serial_site(1, baud=baud) as site:
        keystore, buses = MemoryKeyStore(), BusRegistry()
        options = await commission_all(site, keystore, buses=buses)
        ctx = DriverContext(now=site.locks["lock-1"].now, keystore=keystore)
        driver = SerialDriver("lock-1", options["lock-1"], ctx, buses=buses)
        try:
            await driver.connect()
            before = site.bus.stats.wire_bytes
            started = time.perf_counter()
            codes = [Credential(f"c{i}", CredentialKind.CODE, f"{5000 + i}".encode(), bytes(8))
                     for i in range(40)]
            assert (await driver.put_credentials(codes)).ok
            elapsed = time.perf_counter() - started
        finally:
            await driver.close()
    wire_time = (site.bus.stats.wire_bytes - before) * 10 / baud
    # The simulator paces the wire: the push cannot be faster than the bytes at this baud.
    # (How close it comes to the wire limit is a figure for bench/bench_serial.py.)
    assert elapsed >= 0.95 * wire_time
