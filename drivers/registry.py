"""Driver registry keyed by the config ``type``.

Built-in drivers are listed explicitly; third-party drivers join through the Python entry-point
group ``lockgate.drivers`` (``name = "package.module:DriverClass"``). Nothing registers itself as
an import side effect: :func:`default_registry` builds the registry when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import metadata

from drivers.base import DriverOptions, LockDriver

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lockgate.drivers"


class DriverRegistry:
    def __init__(self, drivers: Iterable[type[LockDriver]] = ()) -> None:
        self._drivers: dict[str, type[LockDriver]] = {}
        for cls in drivers:
            self.register(cls)

    def register(self, cls: type[LockDriver]) -> None:
        name = cls.type_name
        existing = self._drivers.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"driver type {name!r} registered twice: {existing} and {cls}")
        self._drivers[name] = cls

    def get(self, type_name: str) -> type[LockDriver]:
        try:
            return self._drivers[type_name]
        except KeyError:
            known = ", ".join(sorted(self._drivers)) or "none"
            raise KeyError(f"unknown driver type {type_name!r} (known: {known})") from None

    def types(self) -> list[str]:
        return sorted(self._drivers)

    def option_models(self) -> list[type[DriverOptions]]:
        return [self._drivers[name].options_model for name in self.types()]

    def load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = ep.load()
            except Exception:
                log.exception("driver entry point %s could not be loaded; skipped", ep.value)
                continue
            if not (isinstance(cls, type) and issubclass(cls, LockDriver)):
                log.error("entry point %s is not a LockDriver subclass; skipped", ep.value)
                continue
            if cls.type_name != ep.name:
                log.error(
                    "entry point %s names type %r but the class says %r; skipped",
                    ep.value,
                    ep.name,
                    cls.type_name,
                )
                continue
            self.register(cls)


def builtin_drivers() -> list[type[LockDriver]]:
    """The drivers that ship with Lockgate (imported lazily: each pulls its own stack)."""
    found: list[type[LockDriver]] = []
    for module_name, class_name in BUILTINS:
        try:
            module = __import__(module_name, fromlist=[class_name])
        except ImportError as err:  # a driver whose stack is missing is skipped, loudly
            log.warning("built-in driver %s unavailable: %s", module_name, err)
            continue
        found.append(getattr(module, class_name))
    return found


BUILTINS: list[tuple[str, str]] = [
    ("drivers.serial.driver", "SerialDriver"),
    ("drivers.ble.driver", "BleDriver"),
    ("drivers.osdp.driver", "OsdpDriver"),
    ("drivers.nuki.driver", "NukiDriver"),
    ("drivers.zwave.driver", "ZWaveDriver"),
]
"""(module, class) of built-in drivers; the serial and BLE drivers add themselves here."""


def default_registry() -> DriverRegistry:
    registry = DriverRegistry(builtin_drivers())
    registry.load_entry_points()
    return registry
