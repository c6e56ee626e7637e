"""The message layer (docs/protocol.md §7): what travels inside sealed DATA datagrams.

A request is ``type ‖ req_id(u16) ‖ body``; its reply is ``type|0x80 ‖ req_id ‖ status ‖ body``.
The gateway numbers its requests; a lock answers a repeated ``req_id`` from its reply cache
instead of executing the request again (§7.2).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from drivers.lockproto.errors import DecodeError
from drivers.lockproto.status import Status
from drivers.lockproto.wire import Reader, Writer

REPLY_FLAG = 0x80
REQUEST_HEADER_LEN = 3
REPLY_HEADER_LEN = 4
_REQUEST_HEADER = struct.Struct("<BH")
_REPLY_HEADER = struct.Struct("<BHB")
_STATUS = {int(s): s for s in Status}


class MsgType(enum.IntEnum):
    GET_INFO = 0x01
    SET_TIME = 0x02
    GET_STATUS = 0x03
    LIST_CREDENTIALS = 0x04
    PUT_CREDENTIALS = 0x05
    DELETE_CREDENTIALS = 0x06
    LOCK = 0x07
    UNLOCK = 0x08
    READ_EVENTS = 0x09
    ACK_EVENTS = 0x0A
    POLL = 0x0B
    ACCESS_ANSWER = 0x0C
    NOTIFY = 0x40
    """Lock-initiated, ``req_id`` 0, on full-duplex carriers only (BLE); never on RS-485."""


AT_MOST_ONCE = frozenset({MsgType.LOCK, MsgType.UNLOCK, MsgType.ACCESS_ANSWER})
"""Requests the gateway never sends again in a new session (§7.2): within one session the
lock's reply cache stops a repeat from running twice; across sessions nothing does."""


@dataclass(frozen=True, slots=True)
class Request:
    type: int
    req_id: int
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    type: int
    req_id: int
    status: Status
    body: bytes = b""


def encode_request(req: Request) -> bytes:
    return _REQUEST_HEADER.pack(req.type, req.req_id) + req.body


def decode_request(data: bytes) -> Request:
    r = Reader(data)
    kind, req_id = r.u8(), r.u16()
    if kind & REPLY_FLAG:
        raise DecodeError("a reply where a request was expected")
    return Request(kind, req_id, r.rest())


def encode_reply(rep: Reply) -> bytes:
    w = Writer().u8(rep.type | REPLY_FLAG).u16(rep.req_id).u8(rep.status)
    return w.raw(rep.body).getvalue()


def decode_reply(data: bytes) -> Reply:
    if len(data) < REPLY_HEADER_LEN:
        raise DecodeError(f"reply of {len(data)} bytes, shorter than its header")
    kind, req_id, status = _REPLY_HEADER.unpack_from(data)
    if not kind & REPLY_FLAG:
        raise DecodeError("a request where a reply was expected")
    parsed = _STATUS.get(status)
    if parsed is None:
        raise DecodeError(f"unknown status 0x{status:02x}")
    return Reply(kind & ~REPLY_FLAG, req_id, parsed, data[REPLY_HEADER_LEN:])
