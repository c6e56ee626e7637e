"""Payloads of the Nuki commands Lockgate uses (Smart Lock API V2.1 §5), encoded and parsed.

Dates travel as ``year u16, month, day, hour, minute, second`` (7 bytes), all zero for "none";
the lock keeps them in UTC (it applies its timezone offset for display only). A keypad code is
a ``u32`` of six digits 1-9; its window is from/until dates, weekdays (bit 6 Monday ... bit 0
Sunday, none set = every day) and a time of day (from/until hour and minute, both 00:00 =
all day).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from drivers.nuki.wire import WireError

DATE_LEN = 7
NAME_LEN = 20
AUTH_NAME_LEN = 32
ZERO_DATE = bytes(DATE_LEN)


class LockState(enum.IntEnum):
    UNCALIBRATED = 0x00
    LOCKED = 0x01
    UNLOCKING = 0x02
    UNLOCKED = 0x03
    LOCKING = 0x04
    UNLATCHED = 0x05
    UNLOCKED_LOCK_N_GO = 0x06
    UNLATCHING = 0x07
    MOTOR_BLOCKED = 0xFE
    UNDEFINED = 0xFF


class LockAction(enum.IntEnum):
    UNLOCK = 0x01
    LOCK = 0x02
    UNLATCH = 0x03


class DoorSensor(enum.IntEnum):
    UNAVAILABLE = 0x00
    DEACTIVATED = 0x01
    CLOSED = 0x02
    OPENED = 0x03
    UNKNOWN = 0x04
    CALIBRATING = 0x05


class LogType(enum.IntEnum):
    LOGGING = 0x01
    LOCK_ACTION = 0x02
    CALIBRATION = 0x03
    INITIALIZATION = 0x04
    KEYPAD_ACTION = 0x05
    DOOR_SENSOR = 0x06


class Completion(enum.IntEnum):
    SUCCESS = 0x00
    MOTOR_BLOCKED = 0x01
    BUSY = 0x04
    INVALID_CODE = 0xE0
    OTHER_ERROR = 0xFE


ID_TYPE_BRIDGE = 0x01


def encode_date(t: datetime | None) -> bytes:
    if t is None:
        return ZERO_DATE
    t = t.astimezone(UTC)
    return struct.pack("<HBBBBB", t.year, t.month, t.day, t.hour, t.minute, t.second)


def decode_date(raw: bytes) -> datetime | None:
    if len(raw) != DATE_LEN:
        raise WireError("a date is 7 bytes")
    if raw == ZERO_DATE:
        return None
    year, month, day, hour, minute, second = struct.unpack("<HBBBBB", raw)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as err:
        raise WireError(f"bad date: {err}") from err


def encode_name(name: str, size: int = NAME_LEN) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > size:
        raise ValueError(f"name longer than {size} bytes")
    return raw.ljust(size, b"\0")


def decode_name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class CodeWindow:
    """When a keypad code opens. The all-default window is "always"."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekdays: int = 0
    from_time: time = time(0, 0)
    until_time: time = time(0, 0)

    @property
    def time_limited(self) -> bool:
        return self != CodeWindow()

    def encode(self) -> bytes:
        """``time limited | from date | until date | weekdays | from time | until time``."""
        return (
            bytes([1 if self.time_limited else 0])
            + encode_date(self.starts_at)
            + encode_date(self.ends_at)
            + bytes([self.weekdays & 0x7F])
            + bytes([self.from_time.hour, self.from_time.minute])
            + bytes([self.until_time.hour, self.until_time.minute])
        )

    @classmethod
    def decode(cls, raw: bytes) -> CodeWindow:
        """From the 19 bytes after the time-limited flag."""
        if len(raw) != 19:
            raise WireError("a code window is 19 bytes")
        try:
            from_time, until_time = time(raw[15], raw[16]), time(raw[17], raw[18])
        except ValueError as err:
            raise WireError(f"bad time of day: {err}") from err
        return cls(decode_date(raw[0:7]), decode_date(raw[7:14]), raw[14], from_time, until_time)

    def admits(self, t: datetime) -> bool:
        """Whether a code with this window opens at ``t`` (UTC), as the lock decides."""
        if not self.time_limited:
            return True
        t = t.astimezone(UTC)
        if self.starts_at is not None and t < self.starts_at:
            return False
        if self.ends_at is not None and t >= self.ends_at:
            return False
        if self.weekdays and not self.weekdays & (1 << (6 - t.weekday())):
            return False
        if self.from_time != self.until_time:
            now = t.time().replace(tzinfo=None)
            return self.from_time <= now < self.until_time
        return True


@dataclass(frozen=True, slots=True)
class NewCode:
    """Add Keypad Code (0x41), without the nonce and PIN the session appends."""

    code: int = field(repr=False)
    name: str
    window: CodeWindow

    def encode(self) -> bytes:
        return struct.pack("<I", self.code) + encode_name(self.name) + self.window.encode()


@dataclass(frozen=True, slots=True)
class CodeUpdate:
    """Update Keypad Code (0x46), without nonce and PIN."""

    code_id: int
    code: int = field(repr=False)
    name: str
    enabled: bool
    window: CodeWindow

    def encode(self) -> bytes:
        return (
            struct.pack("<HI", self.code_id, self.code)
            + encode_name(self.name)
            + bytes([1 if self.enabled else 0])
            + self.window.encode()
        )


KEYPAD_ENTRY_SHORT = 44
KEYPAD_ENTRY_LONG = KEYPAD_ENTRY_SHORT + 19


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """Keypad Code (0x45): one code as the lock lists it."""

    code_id: int
    code: int = field(repr=False)
    name: str
    enabled: bool
    created: datetime | None
    last_active: datetime | None
    lock_count: int
    window: CodeWindow

    def encode(self, *, short_when_unlimited: bool = True) -> bytes:
        head = (
            struct.pack("<HI", self.code_id, self.code)
            + encode_name(self.name)
            + bytes([1 if self.enabled else 0])
            + encode_date(self.created)
            + encode_date(self.last_active)
            + struct.pack("<H", self.lock_count)
        )
        window = self.window.encode()
        if short_when_unlimited and not self.window.time_limited:
            return head + window[:1]
        return head + window

    @classmethod
    def decode(cls, raw: bytes) -> KeypadEntry:
        """The spec's entry: the window fields only when time-limited; both forms taken."""
        if len(raw) not in (KEYPAD_ENTRY_SHORT, KEYPAD_ENTRY_LONG):
            raise WireError(f"keypad code entry of {len(raw)} bytes")
        code_id, code = struct.unpack_from("<HI", raw)
        name = decode_name(raw[6:26])
        enabled = raw[26] != 0
        created, last_active = decode_date(raw[27:34]), decode_date(raw[34:41])
        (lock_count,) = struct.unpack_from("<H", raw, 41)
        limited = raw[43] != 0
        window = CodeWindow.decode(raw[44:63]) if len(raw) == KEYPAD_ENTRY_LONG else CodeWindow()
        if limited and not window.time_limited:
            window = CodeWindow(starts_at=None, ends_at=None, weekdays=0x7F)
        return cls(code_id, code, name, enabled, created, last_active, lock_count, window)


@dataclass(frozen=True, slots=True)
class KeyturnerStates:
    nuki_state: int
    lock_state: int
    trigger: int
    time: datetime | None
    tz_offset_min: int
    battery: int
    """bit 0 critical, bit 1 charging, bits 2-7 the charge in steps of 2 %."""
    config_count: int = 0
    lock_n_go_timer: int = 0
    last_action: int = 0
    last_action_trigger: int = 0
    last_action_completion: int = 0
    door_sensor: int = DoorSensor.UNAVAILABLE

    @property
    def battery_critical(self) -> bool:
        return bool(self.battery & 1)

    @property
    def battery_percent(self) -> int:
        return ((self.battery & 0xFC) >> 2) * 2

    def encode(self) -> bytes:
        return (
            bytes([self.nuki_state, self.lock_state, self.trigger])
            + encode_date(self.time)
            + struct.pack("<hB", self.tz_offset_min, self.battery)
            + bytes(
                [
                    self.config_count,
                    self.lock_n_go_timer,
                    self.last_action,
                    self.last_action_trigger,
                    self.last_action_completion,
                    self.door_sensor,
                ]
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> KeyturnerStates:
        """The full V2 form and the short one of the spec's example (fields missing = 0)."""
        if len(raw) < 13:
            raise WireError(f"keyturner states of {len(raw)} bytes")
        offset, battery = struct.unpack_from("<hB", raw, 10)
        rest = list(raw[13:19]) + [0] * (19 - max(13, min(len(raw), 19)))
        return cls(raw[0], raw[1], raw[2], decode_date(raw[3:10]), offset, battery, *rest)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """Log Entry (0x32)."""

    index: int
    at: datetime | None
    auth_id: int
    name: str
    type: int
    data: bytes

    def encode(self) -> bytes:
        return (
            struct.pack("<I", self.index)
            + encode_date(self.at)
            + struct.pack("<I", self.auth_id)
            + encode_name(self.name, AUTH_NAME_LEN)
            + bytes([self.type])
            + self.data
        )

    @classmethod
    def decode(cls, raw: bytes) -> LogEntry:
        if len(raw) < 48:
            raise WireError(f"log entry of {len(raw)} bytes")
        (index,) = struct.unpack_from("<I", raw)
        (auth_id,) = struct.unpack_from("<I", raw, 11)
        return cls(
            index,
            decode_date(raw[4:11]),
            auth_id,
            decode_name(raw[15:47]),
            raw[47],
            bytes(raw[48:]),
        )

    @property
    def keypad(self) -> tuple[int, int, int, int] | None:
        """For a keypad entry: (lock action, source, completion status, code id)."""
        if self.type != LogType.KEYPAD_ACTION or len(self.data) < 5:
            return None
        action, source, completion = self.data[0], self.data[1], self.data[2]
        return action, source, completion, struct.unpack_from("<H", self.data, 3)[0]

    @property
    def lock_action(self) -> tuple[int, int, int] | None:
        """For a lock-action entry: (lock action, trigger, completion status)."""
        if self.type != LogType.LOCK_ACTION or len(self.data) < 4:
            return None
        return self.data[0], self.data[1], self.data[3]


def encode_lock_action(action: int, app_id: int, nonce: bytes, flags: int = 0) -> bytes:
    return struct.pack("<BIB", action, app_id, flags) + nonce


def encode_log_request(start: int, count: int, *, descending: bool, total: bool) -> bytes:
    return struct.pack("<IHBB", start, count, 1 if descending else 0, 1 if total else 0)


def encode_code_request(offset: int, count: int) -> bytes:
    return struct.pack("<HH", offset, count)
