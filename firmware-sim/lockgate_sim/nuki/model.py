"""The simulated Nuki lock's memory and rules, without any radio.

Keypad codes follow Nuki's rules (six digits 1-9, not starting with "12", unique on the lock)
and open only inside their window, on the injected clock; every keypad entry and lock action
goes into the log with the code id or the authorization that caused it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from drivers.nuki.messages import (
    CodeWindow,
    Completion,
    DoorSensor,
    KeypadEntry,
    KeyturnerStates,
    LockAction,
    LockState,
    LogEntry,
    LogType,
)

MAX_CODES = 200
SOURCE_CODE = 0x01
TRIGGER_SYSTEM = 0x00


def code_problem(code: int) -> str | None:
    """Why the lock refuses ``code`` (Nuki's rules), or ``None``."""
    text = str(code)
    if len(text) != 6 or not text.isdigit():
        return "not six digits"
    if "0" in text:
        return "contains a 0"
    if text.startswith("12"):
        return 'starts with "12"'
    return None


@dataclass(slots=True)
class Authorization:
    auth_id: int
    shared_key: bytes = field(repr=False)
    name: str
    id_type: int
    app_id: int
    enabled: bool = True


@dataclass(slots=True)
class NukiLockModel:
    name: str = "Nuki_Sim"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    security_pin: int = field(default=1234, repr=False)
    pairing_mode: bool = False
    lock_state: LockState = LockState.LOCKED
    door: DoorSensor = DoorSensor.CLOSED
    battery_percent: int = 84
    battery_critical: bool = False
    tz_offset_min: int = 0
    auths: dict[int, Authorization] = field(default_factory=dict)
    codes: dict[int, KeypadEntry] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    next_auth_id: int = 2
    next_code_id: int = 1
    config_count: int = 0
    log_read_upto: int = 0
    """The newest log index a client has fetched (for the advert's "changed" bit)."""
    last_action: int = 0
    last_trigger: int = 0
    last_completion: int = 0
    on_change: Callable[[], None] | None = None

    def factory_reset(self) -> None:
        """Nuki's factory reset: every authorization, keypad code and log entry gone (the log
        counts from 1 again, authorization ids are handed out from the start again)."""
        self.auths.clear()
        self.codes.clear()
        self.log.clear()
        self.next_auth_id, self.next_code_id, self.log_read_upto = 2, 1, 0
        self.pairing_mode = False
        self._changed()

    # --- state ---------------------------------------------------------------------------
    def states(self) -> KeyturnerStates:
        battery = (min(self.battery_percent, 100) // 2) << 2 | (1 if self.battery_critical else 0)
        return KeyturnerStates(
            nuki_state=0x01 if self.pairing_mode else 0x02,
            lock_state=self.lock_state,
            trigger=self.last_trigger,
            time=self.now().replace(microsecond=0),
            tz_offset_min=self.tz_offset_min,
            battery=battery,
            config_count=self.config_count,
            last_action=self.last_action,
            last_action_trigger=self.last_trigger,
            last_action_completion=self.last_completion,
            door_sensor=self.door,
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _log(self, auth_id: int, name: str, kind: LogType, data: bytes) -> None:
        index = self.log[-1].index + 1 if self.log else 1
        at = self.now().replace(microsecond=0)
        self.log.append(LogEntry(index, at, auth_id, name, kind, data))
        self._changed()

    # --- the bolt ------------------------------------------------------------------------
    def act(self, action: int, *, auth_id: int, trigger: int = TRIGGER_SYSTEM) -> None:
        target = {
            LockAction.UNLOCK: LockState.UNLOCKED,
            LockAction.LOCK: LockState.LOCKED,
            LockAction.UNLATCH: LockState.UNLATCHED,
        }[LockAction(action)]
        self.lock_state = target
        self.last_action, self.last_trigger = action, trigger
        self.last_completion = Completion.SUCCESS
        auth = self.auths.get(auth_id)
        self._log(
            auth_id,
            auth.name if auth else "",
            LogType.LOCK_ACTION,
            bytes([action, trigger, 0, Completion.SUCCESS]),
        )

    # --- keypad codes ----------------------------------------------------------------------
    def add_code(self, code: int, name: str, window: CodeWindow) -> tuple[int, datetime]:
        """Returns (code id, date created); raises ValueError('invalid'|'exists'|'full')."""
        if code_problem(code) is not None:
            raise ValueError("invalid")
        if any(e.code == code for e in self.codes.values()):
            raise ValueError("exists")
        if len(self.codes) >= MAX_CODES:
            raise ValueError("full")
        code_id = self.next_code_id
        self.next_code_id += 1
        created = self.now().replace(microsecond=0)
        self.codes[code_id] = KeypadEntry(code_id, code, name, True, created, None, 0, window)
        self.config_count = (self.config_count + 1) & 0xFF
        self._changed()
        return code_id, created

    def update_code(
        self, code_id: int, code: int, name: str, enabled: bool, window: CodeWindow
    ) -> None:
        entry = self.codes.get(code_id)
        if entry is None:
            raise KeyError(code_id)
        if code_problem(code) is not None:
            raise ValueError("invalid")
        if any(e.code == code and i != code_id for i, e in self.codes.items()):
            raise ValueError("exists")
        self.codes[code_id] = replace(entry, code=code, name=name, enabled=enabled, window=window)
        self.config_count = (self.config_count + 1) & 0xFF
        self._changed()

    def remove_code(self, code_id: int) -> None:
        if code_id not in self.codes:
            raise KeyError(code_id)
        del self.codes[code_id]
        self.config_count = (self.config_count + 1) & 0xFF
        self._changed()

    def type_code(self, digits: str, action: LockAction = LockAction.UNLOCK) -> bool:
        """Someone types ``digits`` on the keypad: the lock decides from its own memory."""
        now = self.now()
        entry = next(
            (e for e in self.codes.values() if digits.isdigit() and e.code == int(digits)), None
        )
        if entry is None or not entry.enabled or not entry.window.admits(now):
            code_id = entry.code_id if entry is not None else 0
            self._log(
                0,
                entry.name if entry else "",
                LogType.KEYPAD_ACTION,
                bytes([action, SOURCE_CODE, Completion.INVALID_CODE]) + struct.pack("<H", code_id),
            )
            return False
        self.codes[entry.code_id] = replace(
            entry, last_active=now.replace(microsecond=0), lock_count=entry.lock_count + 1
        )
        self.lock_state = LockState.UNLOCKED if action == LockAction.UNLOCK else LockState.LOCKED
        self.last_action, self.last_trigger = action, TRIGGER_SYSTEM
        self._log(
            0,
            entry.name,
            LogType.KEYPAD_ACTION,
            bytes([action, SOURCE_CODE, Completion.SUCCESS]) + struct.pack("<H", entry.code_id),
        )
        return True
