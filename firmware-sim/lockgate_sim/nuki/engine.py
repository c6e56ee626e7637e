"""The simulated Nuki lock's command handling, bytes in and bytes out (no radio here).

Pairing (plain messages on the pairing characteristic) runs the spec's exchange: public keys,
two challenges, HMAC authenticators, a new authorization id; it is refused unless the lock is
in pairing mode. Everything else arrives sealed under one authorization's shared key on the
user-specific characteristic; commands that change something take the nonce of a challenge the
lock issued on this link (once) and, for the keypad, the log and the time, the security PIN.
"""

from __future__ import annotations

import enum
import hmac
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from drivers.nuki import crypto
from drivers.nuki import wire as w
from drivers.nuki.messages import (
    AUTH_NAME_LEN,
    CodeWindow,
    LockAction,
    decode_date,
    decode_name,
    encode_date,
)
from drivers.nuki.wire import Command, ErrorCode, Status
from lockgate_sim.nuki.model import Authorization, NukiLockModel

Rng = crypto.Rng
PIN_LEN = 2
NONCE = 32


class LockKey(Protocol):
    """The lock's X25519 key pair, as far as pairing needs it."""

    @property
    def public(self) -> bytes: ...

    def shared_with(self, peer_public: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class X25519LockKey:
    private: bytes = field(repr=False)

    @property
    def public(self) -> bytes:
        return crypto.public_key(self.private)

    def shared_with(self, peer_public: bytes) -> bytes:
        return crypto.shared_key(self.private, peer_public)


class _Step(enum.Enum):
    IDLE = enum.auto()
    KEY_SENT = enum.auto()
    CHALLENGED = enum.auto()
    AUTHENTICATED = enum.auto()
    ID_SENT = enum.auto()


@dataclass(slots=True)
class LinkState:
    """What the lock remembers about one BLE connection."""

    step: _Step = _Step.IDLE
    client_public: bytes = b""
    shared: bytes = field(default=b"", repr=False)
    nonce_k: bytes = b""
    nonce_a: bytes = b""
    pending: Authorization | None = None
    challenges: dict[int, bytes] = field(default_factory=dict)
    """auth id -> the nonce of the last challenge issued on this link (used once)."""


class Refusal(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(slots=True)
class EngineStats:
    sealed_in: int = 0
    bad_pin: int = 0
    bad_nonce: int = 0
    not_authorized: int = 0
    commands: dict[int, int] = field(default_factory=dict)


class NukiEngine:
    def __init__(
        self,
        model: NukiLockModel,
        *,
        key: LockKey | None = None,
        rng: Rng = os.urandom,
        uuid: bytes | None = None,
        nuki_id: int = 0x2A5E11,
    ) -> None:
        self.model = model
        self.key: LockKey = key or X25519LockKey(rng(32))
        self.rng = rng
        self.uuid = uuid or rng(16)
        self.nuki_id = nuki_id
        self.stats = EngineStats()
        self.time_skew = timedelta(0)

    def lock_time(self) -> datetime:
        return self.model.now() + self.time_skew

    # --- pairing service -----------------------------------------------------------------
    def pairing(self, link: LinkState, data: bytes) -> list[bytes]:
        try:
            msg = w.decode_plain(data)
        except w.WireError as err:
            return [_plain_error(err.code, _command_of(data))]
        try:
            return [w.encode_plain(cmd, payload) for cmd, payload in self._pair(link, msg)]
        except Refusal as err:
            link.step = _Step.IDLE
            return [_plain_error(err.code, msg.command)]

    def _pair(self, link: LinkState, msg: w.Message) -> list[tuple[int, bytes]]:
        p = msg.payload
        if msg.command == Command.REQUEST_DATA and p == w.u16(Command.PUBLIC_KEY):
            if not self.model.pairing_mode:
                raise Refusal(ErrorCode.P_NOT_PAIRING)
            link.step = _Step.KEY_SENT
            return [(Command.PUBLIC_KEY, self.key.public)]
        if msg.command == Command.PUBLIC_KEY and link.step is _Step.KEY_SENT:
            _need(len(p) == 32)
            link.client_public = p
            link.shared = self.key.shared_with(p)
            link.nonce_k = self.rng(NONCE)
            link.step = _Step.CHALLENGED
            return [(Command.CHALLENGE, link.nonce_k)]
        if msg.command == Command.AUTHORIZATION_AUTHENTICATOR and link.step is _Step.CHALLENGED:
            _need(len(p) == 32)
            parts = (link.client_public, self.key.public, link.nonce_k)
            if not crypto.authentic(link.shared, p, *parts):
                raise Refusal(ErrorCode.P_BAD_AUTHENTICATOR)
            link.nonce_k = self.rng(NONCE)
            link.step = _Step.AUTHENTICATED
            return [(Command.CHALLENGE, link.nonce_k)]
        if msg.command == Command.AUTHORIZATION_DATA and link.step is _Step.AUTHENTICATED:
            _need(len(p) == 32 + 1 + 4 + 32 + 32)
            if not crypto.authentic(link.shared, p[:32], p[32:], link.nonce_k):
                raise Refusal(ErrorCode.P_BAD_AUTHENTICATOR)
            if len(self.model.auths) >= 100:
                raise Refusal(ErrorCode.P_MAX_USER)
            id_type, (app_id,) = p[32], struct.unpack_from("<I", p, 33)
            auth_id = self.model.next_auth_id
            link.pending = Authorization(
                auth_id, link.shared, decode_name(p[37:69]), id_type, app_id
            )
            link.nonce_a = p[69:101]
            link.nonce_k = self.rng(NONCE)
            link.step = _Step.ID_SENT
            body = w.u32(auth_id) + self.uuid + link.nonce_k
            mac = crypto.h1(link.shared, body, link.nonce_a)
            return [(Command.AUTHORIZATION_ID, mac + body)]
        if msg.command == Command.AUTHORIZATION_ID_CONFIRMATION and link.step is _Step.ID_SENT:
            _need(len(p) == 36)
            pending = link.pending
            assert pending is not None
            if p[32:36] != w.u32(pending.auth_id) or not crypto.authentic(
                link.shared, p[:32], p[32:36], link.nonce_k
            ):
                raise Refusal(ErrorCode.P_BAD_AUTHENTICATOR)
            self.model.auths[pending.auth_id] = pending
            self.model.next_auth_id += 1
            self.model.pairing_mode = False
            link.step, link.pending = _Step.IDLE, None
            return [(Command.STATUS, bytes([Status.COMPLETE]))]
        raise Refusal(ErrorCode.P_BAD_PARAMETER)

    # --- keyturner service (sealed) ------------------------------------------------------
    def sealed(self, link: LinkState, data: bytes) -> list[bytes]:
        self.stats.sealed_in += 1
        try:
            header = w.sealed_header(data)
        except w.WireError as err:
            return [_plain_error(err.code, 0)]
        auth = self.model.auths.get(header.auth_id)
        if auth is None or not auth.enabled:
            self.stats.not_authorized += 1
            return [_plain_error(ErrorCode.K_NOT_AUTHORIZED, 0)]
        try:
            msg = w.decode_sealed(auth.shared_key, data)
        except crypto.OpenError:
            self.stats.not_authorized += 1
            return [_plain_error(ErrorCode.K_NOT_AUTHORIZED, 0)]
        except w.WireError as err:
            return [self._seal(auth, Command.ERROR_REPORT, _error_payload(err.code, 0))]
        counts = self.stats.commands
        counts[msg.command] = counts.get(msg.command, 0) + 1
        try:
            replies = self._command(link, auth, msg.command, msg.payload)
        except Refusal as err:
            if err.code == ErrorCode.K_BAD_PIN:
                self.stats.bad_pin += 1
            elif err.code == ErrorCode.K_BAD_NONCE:
                self.stats.bad_nonce += 1
            replies = [(Command.ERROR_REPORT, _error_payload(err.code, msg.command))]
        return [self._seal(auth, cmd, payload) for cmd, payload in replies]

    def _seal(self, auth: Authorization, command: int, payload: bytes) -> bytes:
        return w.encode_sealed(
            auth.shared_key, auth.auth_id, command, payload, self.rng(crypto.NONCE_LEN)
        )

    def _nonce(self, link: LinkState, auth: Authorization, nonce: bytes) -> None:
        issued = link.challenges.pop(auth.auth_id, None)
        if issued is None or not hmac.compare_digest(issued, nonce):
            raise Refusal(ErrorCode.K_BAD_NONCE)

    def _pin(self, pin: bytes) -> None:
        if struct.unpack("<H", pin)[0] != self.model.security_pin:
            raise Refusal(ErrorCode.K_BAD_PIN)

    def _with_pin(self, link: LinkState, auth: Authorization, p: bytes, body: int) -> bytes:
        """Check ``body bytes | nonce | PIN``; return the body."""
        _need(len(p) == body + NONCE + PIN_LEN)
        self._nonce(link, auth, p[body : body + NONCE])
        self._pin(p[body + NONCE :])
        return p[:body]

    def _command(
        self, link: LinkState, auth: Authorization, cmd: int, p: bytes
    ) -> list[tuple[int, bytes]]:
        m = self.model
        done = (Command.STATUS, bytes([Status.COMPLETE]))
        if cmd == Command.REQUEST_DATA:
            _need(len(p) >= 2)
            (wanted,) = struct.unpack_from("<H", p)
            if wanted == Command.KEYTURNER_STATES:
                states = m.states()
                return [(Command.KEYTURNER_STATES, _with_time(states.encode(), self.lock_time()))]
            if wanted == Command.CHALLENGE:
                nonce = self.rng(NONCE)
                link.challenges[auth.auth_id] = nonce
                return [(Command.CHALLENGE, nonce)]
            raise Refusal(ErrorCode.K_BAD_PARAMETER)
        if cmd == Command.REQUEST_CONFIG:
            _need(len(p) == NONCE)
            self._nonce(link, auth, p)
            return [(Command.CONFIG, self._config())]
        if cmd == Command.LOCK_ACTION:
            _need(len(p) in (6 + NONCE, 6 + 20 + NONCE))
            self._nonce(link, auth, p[-NONCE:])
            try:
                action = LockAction(p[0])
            except ValueError:
                raise Refusal(ErrorCode.K_BAD_PARAMETER) from None
            m.act(action, auth_id=auth.auth_id)
            after = _with_time(m.states().encode(), self.lock_time())
            return [
                (Command.STATUS, bytes([Status.ACCEPTED])),
                (Command.KEYTURNER_STATES, after),
                done,
            ]
        if cmd == Command.VERIFY_SECURITY_PIN:
            self._with_pin(link, auth, p, 0)
            return [done]
        if cmd == Command.UPDATE_TIME:
            body = self._with_pin(link, auth, p, 7)
            when = decode_date(body)
            if when is None:
                raise Refusal(ErrorCode.K_BAD_PARAMETER)
            self.time_skew = when - m.now().replace(microsecond=0)
            return [done]
        if cmd == Command.ADD_KEYPAD_CODE:
            body = self._with_pin(link, auth, p, 4 + 20 + 20)
            code, name = struct.unpack_from("<I", body)[0], decode_name(body[4:24])
            window = _window(body[24:44])
            try:
                code_id, created = m.add_code(code, name, window)
            except ValueError as err:
                raise Refusal(_keypad_error(str(err))) from None
            return [(Command.KEYPAD_CODE_ID, w.u16(code_id) + encode_date(created)), done]
        if cmd == Command.UPDATE_KEYPAD_CODE:
            body = self._with_pin(link, auth, p, 2 + 4 + 20 + 1 + 20)
            code_id, code = struct.unpack_from("<HI", body)
            try:
                m.update_code(
                    code_id, code, decode_name(body[6:26]), body[26] != 0, _window(body[27:47])
                )
            except KeyError:
                raise Refusal(ErrorCode.K_BAD_PARAMETER) from None
            except ValueError as err:
                raise Refusal(_keypad_error(str(err))) from None
            return [done]
        if cmd == Command.REMOVE_KEYPAD_CODE:
            body = self._with_pin(link, auth, p, 2)
            try:
                m.remove_code(struct.unpack("<H", body)[0])
            except KeyError:
                raise Refusal(ErrorCode.K_BAD_PARAMETER) from None
            return [done]
        if cmd == Command.REQUEST_KEYPAD_CODES:
            body = self._with_pin(link, auth, p, 4)
            offset, count = struct.unpack("<HH", body)
            entries = [m.codes[i] for i in sorted(m.codes)][offset : offset + count]
            return [
                (Command.KEYPAD_CODE_COUNT, w.u16(len(m.codes))),
                *((Command.KEYPAD_CODE, e.encode()) for e in entries),
                done,
            ]
        if cmd == Command.REQUEST_LOG_ENTRIES:
            body = self._with_pin(link, auth, p, 8)
            start, count, order, total = struct.unpack("<IHBB", body)
            if order:
                log = [e for e in reversed(m.log) if start == 0 or e.index < start]
            else:
                log = [e for e in m.log if start == 0 or e.index > start]
            chosen = log[:count]
            if chosen:
                m.log_read_upto = max(m.log_read_upto, *(e.index for e in chosen))
            head = (
                [(Command.LOG_ENTRY_COUNT, bytes([1]) + w.u16(len(log)) + bytes([1, 1]))]
                if total
                else []
            )
            return [*head, *((Command.LOG_ENTRY, e.encode()) for e in chosen), done]
        raise Refusal(ErrorCode.K_BAD_PARAMETER)

    def _config(self) -> bytes:
        m = self.model
        return (
            w.u32(self.nuki_id)
            + m.name.encode().ljust(AUTH_NAME_LEN, b"\0")
            + struct.pack("<ff", 47.07, 15.44)
            + bytes([0, 1 if m.pairing_mode else 0, 1, 1, 3])
            + encode_date(self.lock_time())
            + struct.pack("<h", m.tz_offset_min)
            + bytes([1, 0, 1, 2, 3, 0, 0, 1])  # dst, fob, fob actions, single lock, adv, keypad
            + bytes([2, 8, 5])  # firmware 2.8.5
            + bytes([4, 1])  # hardware revision
            + bytes([0])  # homekit
            + struct.pack("<H", 37)  # Europe/Berlin
        )


def _with_time(states: bytes, t: datetime) -> bytes:
    return states[:3] + encode_date(t.replace(microsecond=0)) + states[10:]


def _window(raw: bytes) -> CodeWindow:
    _need(len(raw) == 20)
    try:
        window = CodeWindow.decode(raw[1:])
    except w.WireError:
        raise Refusal(ErrorCode.K_BAD_PARAMETER) from None
    return window if raw[0] else CodeWindow()


def _keypad_error(reason: str) -> ErrorCode:
    return {
        "invalid": ErrorCode.K_CODE_INVALID,
        "exists": ErrorCode.K_CODE_ALREADY_EXISTS,
        "full": ErrorCode.K_TOO_MANY_ENTRIES,
    }[reason]


def _need(ok: bool) -> None:
    if not ok:
        raise Refusal(ErrorCode.BAD_LENGTH)


def _command_of(data: bytes) -> int:
    return struct.unpack_from("<H", data)[0] if len(data) >= 2 else 0


def _error_payload(code: ErrorCode, command: int) -> bytes:
    return bytes([code]) + w.u16(command)


def _plain_error(code: ErrorCode, command: int) -> bytes:
    return w.encode_plain(Command.ERROR_REPORT, _error_payload(code, command))
