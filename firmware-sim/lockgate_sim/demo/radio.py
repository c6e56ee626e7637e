"""The demo's Bluetooth side: a virtual radio with the gateway's adapter, a lock and a phone.

Every device is a bumble device on one :class:`~lockgate_sim.ble.radio.VirtualRadio`. The
gateway's BLE driver is the ordinary :class:`~drivers.ble.driver.BleDriver`, handed the
simulated adapter through its ``adapters=`` hook (:func:`ble_driver_on`), so it runs the real
bleak API over a real ATT/GATT stack to the simulated lock. Omar's phone is a
:class:`~lockgate_sim.ble.phone.SimPhone` on an adapter of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.base import CredentialKind, DriverContext, DriverOptions
from drivers.ble.adapter import AdapterRegistry, BleakBackends
from drivers.ble.driver import BleDriver
from drivers.ble.options import BleOptions
from lockgate_sim.ble.backend import backends_for
from lockgate_sim.ble.central import BumbleCentral
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.phone import SimPhone
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock, SimLockSpec

GATE_SPEC = SimLockSpec(
    slots=250,
    max_batch=100,
    enforces_time_windows=True,
    kinds=frozenset(CredentialKind),
)
"""A BLE lock as they come: a clock of its own (it enforces windows), mobile keys, cards."""


def ble_driver_on(adapters: AdapterRegistry) -> type[BleDriver]:
    """The BLE driver class bound to the simulated adapter (registered under ``ble``)."""

    class SimulatedRadioBleDriver(BleDriver):
        def __init__(self, lock_id: str, options: DriverOptions, ctx: DriverContext) -> None:
            super().__init__(lock_id, options, ctx, adapters=adapters)

    return SimulatedRadioBleDriver


def ble_options(lock: BleLock) -> dict[str, Any]:
    """The gate's ``[locks.driver]`` table: found by its device id, short radio timeouts."""
    return {
        "type": "ble",
        "device_id": lock.device_id.hex(),
        "scan_timeout": 2.0,
        "connect_timeout": 2.0,
        "gatt_timeout": 2.0,
        "reconnect_min": 0.1,
        "reconnect_max": 2.0,
        "connect_attempts": 2,
        "idle_disconnect": 10.0,
        "keepalive": 5.0,
    }


@dataclass
class BleSide:
    radio: VirtualRadio
    adapters: AdapterRegistry
    gate: BleLock
    phone: SimPhone

    @property
    def driver_class(self) -> type[BleDriver]:
        return ble_driver_on(self.adapters)

    def options(self) -> BleOptions:
        return BleOptions.model_validate(ble_options(self.gate))


@contextlib.asynccontextmanager
async def ble_side(
    lock_id: str, *, now: Callable[[], datetime], state_dir: Path
) -> AsyncIterator[BleSide]:
    """The radio, the gateway's adapter, the lock ``lock_id`` advertising, Omar's phone."""
    radio = VirtualRadio()
    async with contextlib.AsyncExitStack() as stack:
        gateway_central = BumbleCentral(radio.device("gateway-adapter"))
        await gateway_central.start()
        stack.push_async_callback(gateway_central.close)
        backends = backends_for(gateway_central)
        adapters = AdapterRegistry(BleakBackends(backends.client, backends.scanner))

        sim = SimLock(lock_id, GATE_SPEC, now=now, state_file=state_dir / f"{lock_id}.json")
        gate = await stack.enter_async_context(BleLock(sim, radio.device(f"lock-{lock_id}")))

        phone_central = BumbleCentral(radio.device("omar-phone"))
        await phone_central.start()
        stack.push_async_callback(phone_central.close)
        phone = SimPhone("Omar's phone", backends_for(phone_central), timeout=3.0)
        yield BleSide(radio, adapters, gate, phone)
