"""Door Lock command class: lock, unlock (optionally for a hold time), bolt state.

Modes are raw integers as zwave-js sends them (the Python client's ``DoorLockMode`` enum gives
other values for the inside/outside modes): 0x00 unsecured, 0x01 unsecured with timeout,
0x10/0x11 inside unsecured, 0x20/0x21 outside unsecured, 0xFE unknown, 0xFF secured.
"""

from __future__ import annotations

from typing import Any

from zwave_js_server.const import CommandClass
from zwave_js_server.model.node import Node

from drivers.base import BoltState
from drivers.zwave.commands import invoke

SECURED = 0xFF
UNSECURED = 0x00
UNSECURED_WITH_TIMEOUT = 0x01
UNKNOWN = 0xFE
OPERATION_CONSTANT = 0x01
OPERATION_TIMED = 0x02


def bolt_of(mode: int | None) -> BoltState:
    if mode == SECURED:
        return BoltState.LOCKED
    if mode is None or mode == UNKNOWN:
        return BoltState.UNKNOWN
    return BoltState.UNLOCKED


class DoorLock:
    def __init__(self, node: Node, *, timeout: float, lock_id: str) -> None:
        self.node = node
        self._timeout = timeout
        self._lock_id = lock_id

    async def _call(self, method: str, *args: Any) -> Any:
        return await invoke(
            self.node,
            CommandClass.DOOR_LOCK,
            method,
            *args,
            within=self._timeout,
            lock_id=self._lock_id,
        )

    async def mode(self) -> int | None:
        result = await self._call("get")
        if isinstance(result, dict) and isinstance(result.get("currentMode"), int):
            return int(result["currentMode"])
        return None

    async def supports_timed(self) -> bool:
        caps = await self._call("getCapabilities")
        return isinstance(caps, dict) and OPERATION_TIMED in (
            caps.get("supportedOperationTypes") or []
        )

    async def set_mode(self, mode: int) -> None:
        await self._call("set", mode)

    async def unlock_for(self, seconds: float) -> None:
        """Timed operation: the lock relocks by itself after ``seconds`` (whole, 1..15239)."""
        whole = max(1, min(round(seconds), 253 * 60 + 59))
        await self._call(
            "setConfiguration",
            {
                "operationType": OPERATION_TIMED,
                "lockTimeoutConfiguration": whole,
                "outsideHandlesCanOpenDoorConfiguration": [True, True, True, True],
                "insideHandlesCanOpenDoorConfiguration": [True, True, True, True],
            },
        )
        await self.set_mode(UNSECURED_WITH_TIMEOUT)
