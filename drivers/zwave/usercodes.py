"""User Code command class on one lock: read, write and clear slots, checksum, limits.

Every read goes to the lock (``wait_for_result``): Z-Wave JS's cached values lag about a second
behind a write, so they cannot confirm one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from zwave_js_server.const import CommandClass
from zwave_js_server.model.node import Node

from drivers.zwave.commands import invoke

DEFAULT_MIN_LENGTH = 4
DEFAULT_MAX_LENGTH = 10
DEFAULT_ALPHABET = "0123456789"


class UserIdStatus(enum.IntEnum):
    AVAILABLE = 0
    ENABLED = 1
    DISABLED = 2
    MESSAGING = 3
    PASSAGE_MODE = 4
    NOT_AVAILABLE = 254


@dataclass(frozen=True, slots=True)
class SlotReading:
    status: int
    code: str = ""

    @property
    def occupied(self) -> bool:
        return self.status not in (UserIdStatus.AVAILABLE, UserIdStatus.NOT_AVAILABLE)

    @property
    def masked(self) -> bool:
        """The lock reports the slot in use but hides the digits (``****`` or nothing)."""
        return self.occupied and (not self.code or set(self.code) <= {"*"})

    def __repr__(self) -> str:  # never the code
        return f"SlotReading(status={self.status}, masked={self.masked})"


@dataclass(frozen=True, slots=True)
class UserCodeLimits:
    users: int
    alphabet: str
    min_length: int
    max_length: int
    checksum: bool


def cc_version(node: Node, cc: CommandClass) -> int:
    """The version of ``cc`` the lock implements, 0 when it has none."""
    for info in node.command_classes:
        if info.id == cc:
            return int(info.version)
    return 0


class UserCodes:
    def __init__(self, node: Node, *, timeout: float, lock_id: str) -> None:
        self.node = node
        self._timeout = timeout
        self._lock_id = lock_id

    async def _call(self, method: str, *args: Any) -> Any:
        return await invoke(
            self.node,
            CommandClass.USER_CODE,
            method,
            *args,
            within=self._timeout,
            lock_id=self._lock_id,
        )

    async def read(self, slot: int) -> SlotReading:
        result = await self._call("get", slot)
        if not isinstance(result, dict):
            return SlotReading(UserIdStatus.NOT_AVAILABLE)
        code = result.get("userCode")
        return SlotReading(
            int(result.get("userIdStatus", UserIdStatus.NOT_AVAILABLE)),
            code if isinstance(code, str) else "",
        )

    async def write(self, slot: int, code: str) -> None:
        await self._call("set", slot, int(UserIdStatus.ENABLED), code)

    async def clear(self, slot: int) -> None:
        await self._call("clear", slot)

    async def checksum(self) -> int | None:
        result = await self._call("getUserCodeChecksum")
        return int(result) if isinstance(result, int) else None

    async def limits(self) -> UserCodeLimits:
        users = await self._call("getUsersCount")
        alphabet, checksum = DEFAULT_ALPHABET, False
        if cc_version(self.node, CommandClass.USER_CODE) >= 2:
            caps = await self._call("getCapabilities")
            if isinstance(caps, dict):
                alphabet = str(caps.get("supportedASCIIChars") or DEFAULT_ALPHABET)
                checksum = bool(caps.get("supportsUserCodeChecksum"))
        lo, hi = self._length_from_metadata()
        return UserCodeLimits(int(users or 0), alphabet, lo, hi, checksum)

    def _length_from_metadata(self) -> tuple[int, int]:
        for value in self.node.values.values():
            if value.command_class == CommandClass.USER_CODE and value.property_ == "userCode":
                data: dict[str, Any] = dict(value.metadata.data)
                lo = data.get("minLength") or DEFAULT_MIN_LENGTH
                hi = data.get("maxLength") or DEFAULT_MAX_LENGTH
                return int(lo), int(hi)
        return DEFAULT_MIN_LENGTH, DEFAULT_MAX_LENGTH
