"""One Bluetooth adapter, shared by the BLE drivers on it: the single owner of the radio.

:class:`BleAdapter` holds the adapter's scanner (:mod:`.scanner`), its connection limit
(:mod:`.slots`) and the lock that keeps LE connects one at a time (controllers and BlueZ take
one pending connect; a second fails with "operation already in progress"). The
:class:`AdapterRegistry` hands the same adapter to every driver naming it and stops it when
the last one leaves. A registry lives per event loop (drivers built by one gateway share it);
tests and simulators pass their own, with injected backend classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from drivers.ble.scanner import AdvertScanner
from drivers.ble.slots import ConnectionSlots
from drivers.errors import DriverConfigError

log = logging.getLogger(__name__)

DEFAULT_ADAPTER = "default"


@dataclass(frozen=True, slots=True)
class BleakBackends:
    """The bleak backend classes for one adapter; ``None`` is bleak's platform backend."""

    client: type[BaseBleakClient] | None = None
    scanner: type[BaseBleakScanner] | None = None


BackendFactory = Callable[[str], AbstractAsyncContextManager[BleakBackends]]
"""Opens the backends of the named adapter (a simulator's radio) and closes them after."""


class BleAdapter:
    def __init__(self, name: str, backends: BleakBackends, *, max_connections: int) -> None:
        self.name = name
        self.backends = backends
        self.bluez: dict[str, Any] = (
            {"adapter": name} if name != DEFAULT_ADAPTER and backends.client is None else {}
        )
        self.scanner = AdvertScanner(backends.scanner, bluez=self.bluez)
        self.slots = ConnectionSlots(max_connections)
        self.connect_lock = asyncio.Lock()

    async def start(self) -> None:
        await self.scanner.start()

    async def stop(self) -> None:
        await self.scanner.stop()


@contextlib.asynccontextmanager
async def _platform(name: str) -> AsyncIterator[BleakBackends]:
    yield BleakBackends()


def load_factory(spec: str) -> BackendFactory:
    """``module:attribute`` of a :data:`BackendFactory`."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise DriverConfigError(f"backend {spec!r} is not 'module:factory'")
    try:
        factory: BackendFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise DriverConfigError(f"backend {spec!r} cannot be loaded: {err}") from err
    return factory


class AdapterRegistry:
    def __init__(self, backends: BleakBackends | None = None) -> None:
        self._fixed = backends
        self._adapters: dict[str, tuple[BleAdapter, int, contextlib.AsyncExitStack]] = {}
        self._lock = asyncio.Lock()

    async def acquire(
        self, name: str, *, max_connections: int, backend: str | None = None
    ) -> BleAdapter:
        async with self._lock:
            entry = self._adapters.get(name)
            if entry is not None:
                adapter, refs, stack = entry
                if adapter.slots.limit != max_connections:
                    raise DriverConfigError(
                        f"adapter {name} has max_connections {adapter.slots.limit} and "
                        f"{max_connections} in two locks' options"
                    )
                self._adapters[name] = (adapter, refs + 1, stack)
                return adapter
            stack = contextlib.AsyncExitStack()
            try:
                if self._fixed is not None:
                    backends = self._fixed
                else:
                    factory = load_factory(backend) if backend else _platform
                    backends = await stack.enter_async_context(factory(name))
                adapter = BleAdapter(name, backends, max_connections=max_connections)
                await adapter.start()
                stack.push_async_callback(adapter.stop)
            except BaseException:
                await stack.aclose()
                raise
            self._adapters[name] = (adapter, 1, stack)
            log.info("BLE adapter %s in use (at most %d connections)", name, max_connections)
            return adapter

    async def release(self, adapter: BleAdapter) -> None:
        async with self._lock:
            entry = self._adapters.get(adapter.name)
            if entry is None or entry[0] is not adapter:
                return
            _, refs, stack = entry
            if refs > 1:
                self._adapters[adapter.name] = (adapter, refs - 1, stack)
                return
            del self._adapters[adapter.name]
        await stack.aclose()

    def get(self, name: str) -> BleAdapter | None:
        entry = self._adapters.get(name)
        return entry[0] if entry else None


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AdapterRegistry] = (
    weakref.WeakKeyDictionary()
)


def default_adapter_registry() -> AdapterRegistry:
    loop = asyncio.get_running_loop()
    registry = _per_loop.get(loop)
    if registry is None:
        registry = _per_loop[loop] = AdapterRegistry()
    return registry
