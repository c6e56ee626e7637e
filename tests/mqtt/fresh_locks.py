"""Two fresh (never commissioned) locks for commissioning tests: one on an RS-485 bus behind a
real pty, one on the simulated BLE radio exposed over HCI/TCP (so another process can use it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockgate_sim.ble.simulator import BleSimulator
from lockgate_sim.lock import SimLock
from lockgate_sim.serial_testing import serial_options, serial_site


@dataclass(frozen=True)
class FreshLocks:
    drivers: dict[str, dict[str, Any]]
    """Lock id -> its ``[locks.driver]`` table."""
    secrets: dict[str, str]
    """Lock id -> the pairing secret on its label."""
    sims: dict[str, SimLock]


@asynccontextmanager
async def fresh_serial_and_ble_locks(
    tmp_path: Path,
    *,
    serial_id: str = "serial-door",
    ble_id: str = "ble-door",
    serial_link: Path | None = None,
) -> AsyncIterator[FreshLocks]:
    """``serial_link``: a stable path (like ``/dev/serial/by-id/...``) linked to the pty."""
    async with (
        serial_site(lock_ids=[serial_id], state_dir=tmp_path, link=serial_link) as bus,
        BleSimulator(state_dir=tmp_path) as radio,
    ):
        ble_lock = await radio.add_lock(ble_id)
        hci = await radio.expose("gateway")
        yield FreshLocks(
            drivers={
                serial_id: serial_options(bus, serial_id).model_dump(mode="json"),
                ble_id: {
                    "type": "ble",
                    "device_id": ble_lock.device_id.hex(),
                    "backend": "lockgate_sim.ble.remote:hci_backends",
                    "adapter": hci.client_spec,
                    "scan_timeout": 2.0,
                    "connect_timeout": 2.0,
                    "reconnect_min": 0.05,
                    "reconnect_max": 0.5,
                },
            },
            secrets={
                serial_id: bus.pairing_secret(serial_id),
                ble_id: ble_lock.pairing_secret,
            },
            sims={serial_id: bus.locks[serial_id], ble_id: ble_lock.lock},
        )
