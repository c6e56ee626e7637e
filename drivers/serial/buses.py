"""Buses keyed by port path: several locks on one RS-485 bus share one port and one lock.

A registry lives per event loop (drivers built by one gateway share it); tests that want
isolation pass their own :class:`BusRegistry` to the driver.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from drivers.errors import DriverConfigError
from drivers.serial.bus import SerialBus


class BusRegistry:
    def __init__(self, factory: Callable[[str, int], SerialBus] = SerialBus) -> None:
        self._factory = factory
        self._buses: dict[str, tuple[SerialBus, int]] = {}

    async def acquire(self, path: str, baud: int) -> SerialBus:
        entry = self._buses.get(path)
        if entry is None:
            bus = self._factory(path, baud)
            self._buses[path] = (bus, 1)
            await bus.start()
            return bus
        bus, refs = entry
        if bus.baud != baud:
            raise DriverConfigError(
                f"serial port {path} is configured at {bus.baud} and {baud} baud by two locks"
            )
        self._buses[path] = (bus, refs + 1)
        return bus

    async def release(self, bus: SerialBus) -> None:
        entry = self._buses.get(bus.path)
        if entry is None or entry[0] is not bus:
            return
        refs = entry[1] - 1
        if refs:
            self._buses[bus.path] = (bus, refs)
            return
        del self._buses[bus.path]
        await bus.stop()

    def get(self, path: str) -> SerialBus | None:
        entry = self._buses.get(path)
        return entry[0] if entry else None


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BusRegistry] = (
    weakref.WeakKeyDictionary()
)


def default_bus_registry() -> BusRegistry:
    loop = asyncio.get_running_loop()
    registry = _per_loop.get(loop)
    if registry is None:
        registry = _per_loop[loop] = BusRegistry()
    return registry
