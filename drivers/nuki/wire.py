"""Nuki message framing (Smart Lock API V2.1 §3): plain and sealed messages, and reassembly.

* Plain (pairing service): ``command u16 | payload | crc u16``, little-endian, the CRC over
  command and payload.
* Sealed (keyturner service): ``nonce[24] | auth_id u32 | length u16 | box``; ``box`` is the
  secretbox of ``auth_id u32 | command u16 | payload | crc u16`` and ``length`` its size.

A lock may split one message into several indications of 20 bytes (the spec's own examples
do). :class:`Reassembler` gets the message boundaries back from the framing itself: the
sealed header carries the length, a plain message's length follows from its command.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from drivers.nuki import crypto


class Command(enum.IntEnum):
    REQUEST_DATA = 0x0001
    PUBLIC_KEY = 0x0003
    CHALLENGE = 0x0004
    AUTHORIZATION_AUTHENTICATOR = 0x0005
    AUTHORIZATION_DATA = 0x0006
    AUTHORIZATION_ID = 0x0007
    KEYTURNER_STATES = 0x000C
    LOCK_ACTION = 0x000D
    STATUS = 0x000E
    BATTERY_REPORT = 0x0011
    ERROR_REPORT = 0x0012
    REQUEST_CONFIG = 0x0014
    CONFIG = 0x0015
    AUTHORIZATION_ID_CONFIRMATION = 0x001E
    VERIFY_SECURITY_PIN = 0x0020
    UPDATE_TIME = 0x0021
    REQUEST_LOG_ENTRIES = 0x0031
    LOG_ENTRY = 0x0032
    LOG_ENTRY_COUNT = 0x0033
    ADD_KEYPAD_CODE = 0x0041
    KEYPAD_CODE_ID = 0x0042
    REQUEST_KEYPAD_CODES = 0x0043
    KEYPAD_CODE_COUNT = 0x0044
    KEYPAD_CODE = 0x0045
    UPDATE_KEYPAD_CODE = 0x0046
    REMOVE_KEYPAD_CODE = 0x0047
    KEYPAD_ACTION = 0x0048


class ErrorCode(enum.IntEnum):
    BAD_CRC = 0xFD
    BAD_LENGTH = 0xFE
    UNKNOWN = 0xFF
    P_NOT_PAIRING = 0x10
    P_BAD_AUTHENTICATOR = 0x11
    P_BAD_PARAMETER = 0x12
    P_MAX_USER = 0x13
    K_NOT_AUTHORIZED = 0x20
    K_BAD_PIN = 0x21
    K_BAD_NONCE = 0x22
    K_BAD_PARAMETER = 0x23
    K_INVALID_AUTH_ID = 0x24
    K_DISABLED = 0x25
    K_TIME_NOT_ALLOWED = 0x27
    K_TOO_MANY_PIN_ATTEMPTS = 0x28
    K_TOO_MANY_ENTRIES = 0x29
    K_CODE_ALREADY_EXISTS = 0x2A
    K_CODE_INVALID = 0x2B
    K_BUSY = 0x45
    K_NOT_CALIBRATED = 0x47

    @classmethod
    def name_of(cls, code: int) -> str:
        try:
            return cls(code).name
        except ValueError:
            return f"0x{code:02X}"


class Status(enum.IntEnum):
    COMPLETE = 0x00
    ACCEPTED = 0x01


class WireError(Exception):
    """Bytes that are not a Nuki message (bad CRC, bad length, unknown framing)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.UNKNOWN) -> None:
        super().__init__(message)
        self.code = code


HEADER_LEN = crypto.NONCE_LEN + 4 + 2
"""nonce, auth id, length: the unencrypted part of a sealed message."""

PLAIN_PAYLOAD_LEN: dict[int, int] = {
    Command.REQUEST_DATA: 2,
    Command.PUBLIC_KEY: 32,
    Command.CHALLENGE: 32,
    Command.AUTHORIZATION_AUTHENTICATOR: 32,
    Command.AUTHORIZATION_DATA: 32 + 1 + 4 + 32 + 32,
    Command.AUTHORIZATION_ID: 32 + 4 + 16 + 32,
    Command.AUTHORIZATION_ID_CONFIRMATION: 32 + 4,
    Command.STATUS: 1,
    Command.ERROR_REPORT: 3,
}
"""Payload size of each message the pairing service carries (the plain ones)."""


@dataclass(frozen=True, slots=True)
class Message:
    command: int
    payload: bytes = field(repr=False)
    auth_id: int | None = None
    """The sender's authorization id; ``None`` for a plain message."""


def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _with_crc(body: bytes) -> bytes:
    return body + u16(crypto.crc16(body))


def _check_crc(data: bytes) -> bytes:
    if len(data) < 4:
        raise WireError(f"{len(data)} bytes: too short for a message", ErrorCode.BAD_LENGTH)
    body, crc = data[:-2], struct.unpack_from("<H", data, len(data) - 2)[0]
    if crypto.crc16(body) != crc:
        raise WireError("bad CRC", ErrorCode.BAD_CRC)
    return body


def encode_plain(command: int, payload: bytes = b"") -> bytes:
    return _with_crc(u16(command) + payload)


def decode_plain(data: bytes) -> Message:
    body = _check_crc(data)
    return Message(struct.unpack_from("<H", body)[0], body[2:])


def encode_sealed(key: bytes, auth_id: int, command: int, payload: bytes, nonce: bytes) -> bytes:
    if len(nonce) != crypto.NONCE_LEN:
        raise ValueError("a sealed message needs a 24-byte nonce")
    box = crypto.seal(key, nonce, _with_crc(u32(auth_id) + u16(command) + payload))
    return nonce + u32(auth_id) + u16(len(box)) + box


@dataclass(frozen=True, slots=True)
class SealedHeader:
    nonce: bytes
    auth_id: int
    length: int


def sealed_header(data: bytes) -> SealedHeader:
    if len(data) < HEADER_LEN:
        raise WireError("shorter than a sealed header", ErrorCode.BAD_LENGTH)
    auth_id, length = struct.unpack_from("<IH", data, crypto.NONCE_LEN)
    header = SealedHeader(data[: crypto.NONCE_LEN], auth_id, length)
    if len(data) != HEADER_LEN + length:
        raise WireError(
            f"length field {length} but {len(data) - HEADER_LEN} bytes follow",
            ErrorCode.BAD_LENGTH,
        )
    if length < crypto.MAC_LEN + 8:
        raise WireError("sealed box too short", ErrorCode.BAD_LENGTH)
    return header


def decode_sealed(key: bytes, data: bytes) -> Message:
    """Open a sealed message; raises :class:`crypto.OpenError` for a forged or foreign one."""
    header = sealed_header(data)
    body = _check_crc(crypto.open_sealed(key, header.nonce, data[HEADER_LEN:]))
    inner_auth, command = struct.unpack_from("<IH", body)
    if inner_auth != header.auth_id:
        raise WireError("the sealed auth id differs from the header's", ErrorCode.K_NOT_AUTHORIZED)
    return Message(command, body[6:], inner_auth)


PLAIN_ERROR_LEN = 2 + 3 + 2


def _plain_error_at_start(buf: bytearray) -> bool:
    """A lock that cannot open a sealed message answers a plain Error Report (7 bytes) on the
    sealed channel; a sealed message starting like one (nonce bytes) would need the CRC to
    match too: a chance of 2**-32."""
    if len(buf) < PLAIN_ERROR_LEN or buf[:2] != bytes((Command.ERROR_REPORT, 0)):
        return False
    return crypto.crc16(bytes(buf[:5])) == int(struct.unpack_from("<H", buf, 5)[0])


class Reassembler:
    """Whole messages out of indications, however the lock cut them."""

    def __init__(self, *, sealed: bool, max_len: int = 4096) -> None:
        self.sealed = sealed
        self.max_len = max_len
        self._buffer = bytearray()

    def reset(self) -> None:
        self._buffer.clear()

    def feed(self, chunk: bytes) -> list[bytes]:
        """The messages completed by ``chunk`` (none while one is still partial)."""
        self._buffer += chunk
        done: list[bytes] = []
        while True:
            need = self._needed()
            if need is None or len(self._buffer) < need:
                break
            done.append(bytes(self._buffer[:need]))
            del self._buffer[:need]
        return done

    def _needed(self) -> int | None:
        buf = self._buffer
        if self.sealed:
            if _plain_error_at_start(buf):
                return PLAIN_ERROR_LEN
            if len(buf) < HEADER_LEN:
                return None
            need = HEADER_LEN + int(struct.unpack_from("<H", buf, crypto.NONCE_LEN + 4)[0])
        else:
            if len(buf) < 2:
                return None
            command = int(struct.unpack_from("<H", buf)[0])
            size = PLAIN_PAYLOAD_LEN.get(command)
            if size is None:
                self.reset()
                raise WireError(f"unknown plain command 0x{command:04X}")
            need = 2 + size + 2
        if need > self.max_len:
            self.reset()
            raise WireError(f"message of {need} bytes announced", ErrorCode.BAD_LENGTH)
        return need
