"""Status codes: one byte in every reply and in plain ERROR datagrams (docs/protocol.md §8)."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    OK = 0x00
    BAD_REQUEST = 0x01
    UNKNOWN_MESSAGE = 0x02
    BUSY = 0x03
    CODE_RULE = 0x04
    CAPACITY = 0x05
    DUPLICATE = 0x06
    UNSUPPORTED = 0x07
    NOT_FOUND = 0x08
    TOO_LARGE = 0x09
    REJECTED = 0x0A
    JAMMED = 0x0B
    UNKNOWN_HANDLE = 0x0C
    INTERNAL = 0x0D
    # link-level, in plain ERROR datagrams (unauthenticated hints)
    NOT_COMMISSIONED = 0x40
    WRONG_GATEWAY = 0x41
    NOT_IN_PAIRING_MODE = 0x42
    NO_SESSION = 0x43
    VERSION_UNSUPPORTED = 0x44
    PAIRING_FAILED = 0x45
    RATE_LIMITED = 0x46

    @classmethod
    def parse(cls, value: int) -> Status:
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL
