"""Panels keyed by port path: the readers on one RS-485 bus share one control panel.

A registry lives per event loop (drivers built by one gateway share it); tests that want
isolation pass their own :class:`PanelRegistry` to the driver.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from drivers.errors import DriverConfigError
from drivers.osdp.panel import Panel


class PanelRegistry:
    def __init__(self, factory: Callable[[str, int], Panel] = Panel) -> None:
        self._factory = factory
        self._panels: dict[str, tuple[Panel, int]] = {}

    async def acquire(self, path: str, baud: int) -> Panel:
        entry = self._panels.get(path)
        if entry is None:
            panel = self._factory(path, baud)
            self._panels[path] = (panel, 1)
            await panel.start()
            return panel
        panel, refs = entry
        if panel.baud != baud:
            raise DriverConfigError(
                f"OSDP port {path} is configured at {panel.baud} and {baud} baud by two readers"
            )
        self._panels[path] = (panel, refs + 1)
        return panel

    async def release(self, panel: Panel) -> None:
        entry = self._panels.get(panel.path)
        if entry is None or entry[0] is not panel:
            return
        refs = entry[1] - 1
        if refs:
            self._panels[panel.path] = (panel, refs)
            return
        del self._panels[panel.path]
        await panel.stop()

    def get(self, path: str) -> Panel | None:
        entry = self._panels.get(path)
        return entry[0] if entry else None


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PanelRegistry] = (
    weakref.WeakKeyDictionary()
)


def default_panel_registry() -> PanelRegistry:
    loop = asyncio.get_running_loop()
    registry = _per_loop.get(loop)
    if registry is None:
        registry = _per_loop[loop] = PanelRegistry()
    return registry
