"""The Nuki rig: simulated Nuki locks on the virtual radio, the gateway's adapter beside them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.nuki.gatt import NukiBleLock
from lockgate_sim.nuki.model import NukiLockModel

from gateway.clock import FakeClock
from tests.ble.conftest import Adapter, adapter_on, gateway, radio

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
        import asyncio

        for t in asyncio.all_tasks():
            if t.get_name().startswith("nuki-rx"):
                print("BEFORE EXIT", t, lock._peers, lock._ended)
    import asyncio

    for t in asyncio.all_tasks():
        if t.get_name().startswith("nuki-rx"):
            print("AFTER EXIT", t)
            t.print_stack()


@pytest.fixture
async def nuki(radio: VirtualRadio, clock: FakeClock) -> AsyncIterator[NukiBleLock]:
    async with nuki_lock(radio, "Front", clock) as lock:
        yield lock


@pytest.fixture
async def phone(radio: VirtualRadio) -> AsyncIterator[Adapter]:
    """A second adapter: the independent client's (pyNukiBT's) Bluetooth."""
    async with adapter_on(radio, "phone") as adapter:
        yield adapter
