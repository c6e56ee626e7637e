"""The operations Lockgate needs of a Nuki lock, over one :class:`NukiSession`."""

from __future__ import annotations

import struct
from datetime import datetime

from drivers.nuki import wire as w
from drivers.nuki.messages import (
    CodeUpdate,
    KeypadEntry,
    KeyturnerStates,
    LogEntry,
    NewCode,
    encode_code_request,
    encode_date,
    encode_lock_action,
    encode_log_request,
)
from drivers.nuki.session import ActionUnconfirmed, NukiError, NukiReplyError, NukiSession
from drivers.nuki.wire import Command

PAGE = 20
"""Keypad codes or log entries asked for in one exchange."""


class NukiClient:
    def __init__(self, session: NukiSession) -> None:
        self.session = session

    async def states(self) -> KeyturnerStates:
        msg = await self.session.request(Command.KEYTURNER_STATES)
        try:
            return KeyturnerStates.decode(msg.payload)
        except w.WireError as err:
            raise NukiReplyError(f"keyturner states: {err}") from err

    async def lock_action(self, action: int) -> None:
        """Lock, unlock or unlatch. Once the command is on its way, anything but the lock's
        own answer (a lost link, a timeout) raises :class:`ActionUnconfirmed`."""
        nonce = await self.session.challenge()
        body = encode_lock_action(action, self.session.keys.app_id, nonce)
        try:
            got = await self.session.exchange(Command.LOCK_ACTION, body, until=(Command.STATUS,))
            if got[-1].payload[:1] == bytes([w.Status.ACCEPTED]):
                await self.session.more((Command.STATUS,))
        except NukiError:
            raise
        except Exception as err:
            raise ActionUnconfirmed(f"no answer to the lock action: {err}") from err

    async def verify_pin(self) -> None:
        await self.session.secured(Command.VERIFY_SECURITY_PIN, b"")

    async def update_time(self, t: datetime) -> None:
        await self.session.secured(Command.UPDATE_TIME, encode_date(t))

    async def add_code(self, code: NewCode) -> int:
        got = await self.session.secured(Command.ADD_KEYPAD_CODE, code.encode())
        ids = [m for m in got if m.command == Command.KEYPAD_CODE_ID]
        if not ids or len(ids[0].payload) < 2:
            raise NukiReplyError("no keypad code id in the lock's answer")
        return int(struct.unpack_from("<H", ids[0].payload)[0])

    async def update_code(self, update: CodeUpdate) -> None:
        await self.session.secured(Command.UPDATE_KEYPAD_CODE, update.encode())

    async def remove_code(self, code_id: int) -> None:
        await self.session.secured(Command.REMOVE_KEYPAD_CODE, w.u16(code_id))

    async def list_codes(self) -> list[KeypadEntry]:
        entries: list[KeypadEntry] = []
        total: int | None = None
        while total is None or len(entries) < total:
            got = await self.session.secured(
                Command.REQUEST_KEYPAD_CODES, encode_code_request(len(entries), PAGE)
            )
            page: list[KeypadEntry] = []
            for msg in got:
                if msg.command == Command.KEYPAD_CODE_COUNT and len(msg.payload) >= 2:
                    total = int(struct.unpack_from("<H", msg.payload)[0])
                elif msg.command == Command.KEYPAD_CODE:
                    try:
                        page.append(KeypadEntry.decode(msg.payload))
                    except w.WireError as err:
                        raise NukiReplyError(f"keypad code entry: {err}") from err
            entries += page
            if total is None:
                raise NukiReplyError("no keypad code count in the lock's answer")
            if not page:
                break  # the list shrank while we read it
        return entries

    async def log_newest(self) -> int:
        """The index of the newest log entry (0 when the log is empty)."""
        got = await self.session.secured(
            Command.REQUEST_LOG_ENTRIES, encode_log_request(0, 1, descending=True, total=False)
        )
        try:
            entries = [LogEntry.decode(m.payload) for m in got if m.command == Command.LOG_ENTRY]
        except w.WireError as err:
            raise NukiReplyError(f"log entry: {err}") from err
        return max((e.index for e in entries), default=0)

    async def log_after(self, index: int, count: int) -> list[LogEntry]:
        """Up to ``count`` log entries newer than ``index`` (0: from the oldest), oldest
        first."""
        got = await self.session.secured(
            Command.REQUEST_LOG_ENTRIES,
            encode_log_request(index, count, descending=False, total=False),
        )
        try:
            return [LogEntry.decode(m.payload) for m in got if m.command == Command.LOG_ENTRY]
        except w.WireError as err:
            raise NukiReplyError(f"log entry: {err}") from err
