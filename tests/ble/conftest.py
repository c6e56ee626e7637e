"""The BLE rig: a virtual radio, simulated locks on it, and the gateway's adapter.

The driver under test calls the real ``bleak.BleakClient`` / ``bleak.BleakScanner``; the
backend classes drive a bumble central on the same virtual link as the locks. Everything is
built inside the test's event loop and torn down at its end (bumble needs a running loop).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from lockgate_sim.ble.backend import BumbleBackends, backends_for
from lockgate_sim.ble.central import BumbleCentral
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock, SimLockSpec

from drivers.base import CredentialKind, DriverContext, KeyStore
from drivers.ble.adapter import AdapterRegistry, BleakBackends
from drivers.ble.driver import BleDriver
from drivers.ble.options import BleOptions
from gateway.clock import FakeClock

WAIT = 5.0
"""Upper bound for awaiting something that should happen in milliseconds."""

BLE_SPEC = SimLockSpec(
    slots=250,
    max_batch=100,
    enforces_time_windows=True,
    kinds=frozenset(CredentialKind),
)


class MemoryKeyStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def put(self, name: str, value: bytes) -> None:
        self.data[name] = value

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


@dataclass
class Adapter:
    """A simulated Bluetooth adapter: a bumble central and bleak backends bound to it."""

    central: BumbleCentral
    backends: BumbleBackends
    registry: AdapterRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = AdapterRegistry(BleakBackends(self.backends.client, self.backends.scanner))


@pytest.fixture
async def radio() -> VirtualRadio:
    return VirtualRadio()


@contextlib.asynccontextmanager
async def adapter_on(radio: VirtualRadio, name: str) -> AsyncIterator[Adapter]:
    central = BumbleCentral(radio.device(name))
    await central.start()
    try:
        yield Adapter(central, backends_for(central))
    finally:
        await central.close()


@pytest.fixture
async def gateway(radio: VirtualRadio) -> AsyncIterator[Adapter]:
    async with adapter_on(radio, "gateway") as adapter:
        yield adapter


@contextlib.asynccontextmanager
async def ble_lock(
    radio: VirtualRadio,
    lock_id: str,
    clock: FakeClock,
    spec: SimLockSpec = BLE_SPEC,
    **kwargs: object,
) -> AsyncIterator[BleLock]:
    sim = SimLock(lock_id, spec, now=clock.now)
    async with BleLock(sim, radio.device(f"lock-{lock_id}"), clock=clock, **kwargs) as lock:  # type: ignore[arg-type]
        yield lock


@pytest.fixture
async def lock(radio: VirtualRadio, clock: FakeClock) -> AsyncIterator[BleLock]:
    async with ble_lock(radio, "front", clock) as lock:
        yield lock


def fast_options(lock: BleLock, **overrides: object) -> BleOptions:
    """Options for the simulated radio: short radio timeouts, quick backoff."""
    values: dict[str, object] = {
        "device_id": lock.device_id.hex(),
        "scan_timeout": 1.0,
        "connect_timeout": 1.0,
        "gatt_timeout": 2.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "connect_attempts": 2,
        "idle_disconnect": 30.0,
        "keepalive": 15.0,
    }
    values.update(overrides)
    return BleOptions.model_validate(values)


@contextlib.asynccontextmanager
async def ble_driver(
    adapter: Adapter,
    lock: BleLock,
    clock: FakeClock,
    *,
    lock_id: str | None = None,
    keystore: KeyStore | None = None,
    commission: bool = True,
    ctx: DriverContext | None = None,
    **overrides: object,
) -> AsyncIterator[BleDriver]:
    ctx = ctx or DriverContext(now=clock.now, keystore=keystore or MemoryKeyStore())
    driver = BleDriver(
        lock_id or lock.name,
        fast_options(lock, **overrides),
        ctx,
        adapters=adapter.registry,
        clock=clock,
        rng=os.urandom,
    )
    async with driver:
        if commission:
            await driver.commission(lock.pairing_secret)
        yield driver
