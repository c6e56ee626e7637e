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
async def fresh_serial_and_ble_locks(tmp_path: Path) -> AsyncIterator[FreshLocks]:
    async with (
        serial_site(lock_ids=["serial-door"], state_dir=tmp_path) as bus,
        BleSimulator(state_dir=tmp_path) as radio,
    ):
        ble_lock = await radio.add_lock("ble-door")
        hci = await radio.expose("gateway")
        yield FreshLocks(
            drivers={
                "serial-door": serial_options(bus, "serial-door").model_dump(mode="json"),
                "ble-door": {
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
                "serial-door": bus.pairing_secret("serial-door"),
                "ble-door": ble_lock.pairing_secret,
            },
            sims={"serial-door": bus.locks["serial-door"], "ble-door": ble_lock.lock},
        )
