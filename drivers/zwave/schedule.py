"""Schedule Entry Lock year-day schedules (one per user slot) and the lock's clock.

A year-day schedule has minutes and a one-byte year (2000 + byte: zwave-js passes the number
straight through, so ``year - 2000`` is sent). zwave-js checks start < stop with JavaScript's
``Date(year, ...)``, which reads years 0-99 as 1900-1999: bytes stay below 100, so a window
open on one side is closed at 2000-01-01 or 2099-12-31 23:59; a window open on both sides is no
schedule at all. Windows go in UTC; the lock's clock is set in UTC through Time Parameters,
from the gateway's trusted clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zwave_js_server.const import CommandClass
from zwave_js_server.model.node import Node

from drivers.base import TimeWindow
from drivers.errors import UnsupportedError
from drivers.zwave.commands import guarded, invoke
from drivers.zwave.usercodes import cc_version

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
SCHEDULE_SLOT = 1


def is_open(window: TimeWindow | None) -> bool:
    return window is None or (window.starts_at is None and window.ends_at is None)


def year_day(window: TimeWindow) -> dict[str, int]:
    start = max(window.starts_at or EARLIEST, EARLIEST).astimezone(UTC)
    stop = min(window.ends_at or LATEST, LATEST).astimezone(UTC)
    return {
        "startYear": start.year - 2000,
        "startMonth": start.month,
        "startDay": start.day,
        "startHour": start.hour,
        "startMinute": start.minute,
        "stopYear": stop.year - 2000,
        "stopMonth": stop.month,
        "stopDay": stop.day,
        "stopHour": stop.hour,
        "stopMinute": stop.minute,
    }


class Schedules:
    def __init__(self, node: Node, *, timeout: float, lock_id: str) -> None:
        self.node = node
        self._timeout = timeout
        self._lock_id = lock_id

    async def _call(self, method: str, *args: Any) -> Any:
        return await invoke(
            self.node,
            CommandClass.SCHEDULE_ENTRY_LOCK,
            method,
            *args,
            within=self._timeout,
            lock_id=self._lock_id,
        )

    async def year_day_slots(self) -> int:
        if not cc_version(self.node, CommandClass.SCHEDULE_ENTRY_LOCK):
            return 0
        result = await self._call("getNumSlots")
        if isinstance(result, dict):
            return int(result.get("numYearDaySlots") or 0)
        return 0

    def has_clock(self) -> bool:
        return bool(
            cc_version(self.node, CommandClass.TIME_PARAMETERS)
            or cc_version(self.node, CommandClass.TIME)
        )

    async def set_window(self, slot: int, window: TimeWindow) -> None:
        await self._call(
            "setYearDaySchedule", {"userId": slot, "slotId": SCHEDULE_SLOT}, year_day(window)
        )

    async def clear_window(self, slot: int) -> None:
        await self._call("setYearDaySchedule", {"userId": slot, "slotId": SCHEDULE_SLOT})

    async def set_clock(self, t: datetime) -> None:
        """Set the lock's clock. zwave-js answers True even for a lock with no clock command
        class, so the presence of one is checked first."""
        if not self.has_clock():
            raise UnsupportedError("the lock has no clock command class", lock_id=self._lock_id)
        await guarded(
            self.node.async_set_date_and_time(t.astimezone(UTC)),
            "set date and time",
            within=self._timeout,
            lock_id=self._lock_id,
        )
        await self._call("setTimezone", {"standardOffset": 0, "dstOffset": 0})
