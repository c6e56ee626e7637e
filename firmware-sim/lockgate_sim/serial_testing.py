"""Helpers to start the serial driver against simulated locks (tests, the demo, e2e flows).

::

    async with serial_site(2, state_dir=tmp_path) as site:
        keystore = MemoryKeyStore()
        options = await commission_all(site, keystore)
        driver = SerialDriver("lock-1", options["lock-1"], DriverContext(now, keystore))

:func:`commission_all` commissions every lock of a site with its pairing secret and returns the
:class:`SerialOptions` of each, ready for a gateway config.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from drivers.base import DriverContext, KeyStore
from drivers.serial.buses import BusRegistry
from drivers.serial.driver import SerialDriver
from drivers.serial.options import SerialOptions
from lockgate_sim.serial_bus import SerialSite, serial_site

__all__ = ["MemoryKeyStore", "commission_all", "serial_options", "serial_site"]


class MemoryKeyStore:
    """A :class:`drivers.base.KeyStore` in a dict (tests only: not encrypted at rest)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def put(self, name: str, value: bytes) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def serial_options(site: SerialSite, lock_id: str, **overrides: Any) -> SerialOptions:
    """Options for the lock ``lock_id`` of ``site`` (``overrides`` win)."""
    values: dict[str, Any] = {
        "port": site.path,
        "address": site.addresses[lock_id],
        "poll_interval": 0.05,
    }
    values.update(overrides)
    return SerialOptions(**values)


async def commission_all(
    site: SerialSite,
    keystore: KeyStore,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    buses: BusRegistry | None = None,
    **overrides: Any,
) -> dict[str, SerialOptions]:
    """Commission each lock of ``site`` into ``keystore``; returns each lock's options.

    ``overrides`` go into every lock's :class:`SerialOptions` (``poll_interval=0.1``...).
    """
    options: dict[str, SerialOptions] = {}
    for lock_id in site.locks:
        opts = serial_options(site, lock_id, **overrides)
        driver = SerialDriver(lock_id, opts, DriverContext(now=now, keystore=keystore),
                              buses=buses)
        try:
            await driver.commission(site.pairing_secret(lock_id))
        finally:
            await driver.close()
        options[lock_id] = opts
    return options
