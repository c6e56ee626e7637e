"""The Nuki rig: simulated Nuki locks on the virtual radio, the gateway's adapter beside them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.nuki.gatt import NukiBleLock
from lockgate_sim.nuki.model import NukiLockModel

from drivers.base import DriverContext, KeyStore
from drivers.nuki.driver import NukiDriver
from drivers.nuki.options import NukiOptions
from gateway.clock import FakeClock
from tests.ble.conftest import Adapter, MemoryKeyStore, adapter_on, gateway, radio

__all__ = ["gateway", "radio"]

SECURITY_PIN = 4711


@contextlib.asynccontextmanager
async def nuki_lock(
    radio: VirtualRadio, name: str, clock: FakeClock, *, pairing: bool = True
) -> AsyncIterator[NukiBleLock]:
    model = NukiLockModel(name=name, now=clock.now, security_pin=SECURITY_PIN)
    async with NukiBleLock(model, radio.device(f"nuki-{name}")) as lock:
        if pairing:
            lock.press_pairing_button()
        yield lock


@pytest.fixture
async def nuki(radio: VirtualRadio, clock: FakeClock) -> AsyncIterator[NukiBleLock]:
    async with nuki_lock(radio, "Front", clock) as lock:
        yield lock


@pytest.fixture
async def phone(radio: VirtualRadio) -> AsyncIterator[Adapter]:
    """A second adapter: the independent client's (pyNukiBT's) Bluetooth."""
    async with adapter_on(radio, "phone") as adapter:
        yield adapter


def nuki_options(lock: NukiBleLock, **overrides: object) -> NukiOptions:
    """Options for the simulated radio: short radio timeouts, quick backoff."""
    values: dict[str, object] = {
        "type": "nuki",
        "address": lock.address,
        "scan_timeout": 1.0,
        "connect_timeout": 1.0,
        "gatt_timeout": 2.0,
        "reply_timeout": 2.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "connect_attempts": 2,
    }
    values.update(overrides)
    return NukiOptions.model_validate(values)


@contextlib.asynccontextmanager
async def nuki_driver(
    adapter: Adapter,
    lock: NukiBleLock,
    clock: FakeClock,
    *,
    lock_id: str | None = None,
    keystore: KeyStore | None = None,
    ctx: DriverContext | None = None,
    commission: bool = True,
    **overrides: object,
) -> AsyncIterator[NukiDriver]:
    ctx = ctx or DriverContext(now=clock.now, keystore=keystore or MemoryKeyStore())
    driver = NukiDriver(
        lock_id or lock.name,
        nuki_options(lock, **overrides),
        ctx,
        adapters=adapter.registry,
        clock=clock,
    )
    async with driver:
        if commission:
            await driver.commission(str(SECURITY_PIN))
        yield driver
