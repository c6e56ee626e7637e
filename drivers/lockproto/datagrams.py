"""Session-layer datagrams (docs/protocol.md §4): what every carrier moves, one per frame.

The first byte is the datagram type. Only DATA is sealed; the handshake and pairing datagrams
are protected by the MACs inside them, and ERROR is an unauthenticated hint.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from drivers.lockproto.errors import DecodeError
from drivers.lockproto.status import Status
from drivers.lockproto.wire import Reader, Writer

NONCE_LEN = 16
KEY_LEN = 32
ID_LEN = 8
TAG_LEN = 16
DATA_HEADER_LEN = 1 + 4 + 8
_DATA_HEADER = struct.Struct("<BIQ")
"""A DATA datagram's header: type, session id (u32), counter (u64)."""
MAX_ERROR_DETAIL = 32


class DgType(enum.IntEnum):
    HELLO = 0x01
    HELLO_REPLY = 0x02
    DATA = 0x03
    PAIR_START = 0x10
    PAIR_CHALLENGE = 0x11
    PAIR_PROOF = 0x12
    PAIR_DONE = 0x13
    ERROR = 0x7F


@dataclass(frozen=True, slots=True)
class Hello:
    version_min: int
    version_max: int
    gateway_id: bytes
    nonce: bytes
    ephemeral: bytes


@dataclass(frozen=True, slots=True)
class HelloReply:
    version: int
    session_id: int
    device_id: bytes
    nonce: bytes
    ephemeral: bytes
    confirm: bytes


@dataclass(frozen=True, slots=True)
class Data:
    session_id: int
    counter: int
    sealed: bytes

    @property
    def header(self) -> bytes:
        """The associated data of the AEAD: type, session id and counter, as on the wire."""
        return data_header(self.session_id, self.counter)


def data_header(session_id: int, counter: int) -> bytes:
    """A DATA datagram's header as on the wire (the AEAD's associated data too)."""
    return _DATA_HEADER.pack(_DATA, session_id, counter)


@dataclass(frozen=True, slots=True)
class PairStart:
    version_min: int
    version_max: int
    nonce: bytes
    static: bytes


@dataclass(frozen=True, slots=True)
class PairChallenge:
    version: int
    device_id: bytes
    nonce: bytes
    static: bytes


@dataclass(frozen=True, slots=True)
class PairProof:
    proof: bytes


@dataclass(frozen=True, slots=True)
class PairDone:
    proof: bytes


@dataclass(frozen=True, slots=True)
class ErrorDg:
    status: Status
    detail: bytes = b""


Datagram = Hello | HelloReply | Data | PairStart | PairChallenge | PairProof | PairDone | ErrorDg
_DATA = int(DgType.DATA)
_DATA_BYTE = bytes((_DATA,))


def encode(dg: Datagram) -> bytes:
    if type(dg) is Data:  # every request and reply once a session is open
        return data_header(dg.session_id, dg.counter) + dg.sealed
    w = Writer()
    match dg:
        case Hello():
            w.u8(DgType.HELLO).u8(dg.version_min).u8(dg.version_max)
            w.raw(_exact(dg.gateway_id, ID_LEN)).raw(_exact(dg.nonce, NONCE_LEN))
            w.raw(_exact(dg.ephemeral, KEY_LEN))
        case HelloReply():
            w.u8(DgType.HELLO_REPLY).u8(dg.version).u32(dg.session_id)
            w.raw(_exact(dg.device_id, ID_LEN)).raw(_exact(dg.nonce, NONCE_LEN))
            w.raw(_exact(dg.ephemeral, KEY_LEN)).raw(_exact(dg.confirm, TAG_LEN))
        case Data():
            w.raw(dg.header).raw(dg.sealed)
        case PairStart():
            w.u8(DgType.PAIR_START).u8(dg.version_min).u8(dg.version_max)
            w.raw(_exact(dg.nonce, NONCE_LEN)).raw(_exact(dg.static, KEY_LEN))
        case PairChallenge():
            w.u8(DgType.PAIR_CHALLENGE).u8(dg.version).raw(_exact(dg.device_id, ID_LEN))
            w.raw(_exact(dg.nonce, NONCE_LEN)).raw(_exact(dg.static, KEY_LEN))
        case PairProof():
            w.u8(DgType.PAIR_PROOF).raw(_exact(dg.proof, TAG_LEN))
        case PairDone():
            w.u8(DgType.PAIR_DONE).raw(_exact(dg.proof, TAG_LEN))
        case ErrorDg():
            if len(dg.detail) > MAX_ERROR_DETAIL:
                raise ValueError("error detail too long")
            w.u8(DgType.ERROR).u8(dg.status).raw(dg.detail)
    return w.getvalue()


def decode(data: bytes) -> Datagram:
    if data[:1] == _DATA_BYTE:  # every datagram once a session is open
        if len(data) < DATA_HEADER_LEN + TAG_LEN:
            raise DecodeError("DATA datagram shorter than its header and tag")
        _, sid, counter = _DATA_HEADER.unpack_from(data)
        return Data(sid, counter, data[DATA_HEADER_LEN:])
    r = Reader(data)
    kind = r.u8()
    dg: Datagram
    if kind == DgType.HELLO:
        dg = Hello(r.u8(), r.u8(), r.raw(ID_LEN), r.raw(NONCE_LEN), r.raw(KEY_LEN))
    elif kind == DgType.HELLO_REPLY:
        dg = HelloReply(
            r.u8(), r.u32(), r.raw(ID_LEN), r.raw(NONCE_LEN), r.raw(KEY_LEN), r.raw(TAG_LEN)
        )
    elif kind == DgType.PAIR_START:
        dg = PairStart(r.u8(), r.u8(), r.raw(NONCE_LEN), r.raw(KEY_LEN))
    elif kind == DgType.PAIR_CHALLENGE:
        dg = PairChallenge(r.u8(), r.raw(ID_LEN), r.raw(NONCE_LEN), r.raw(KEY_LEN))
    elif kind == DgType.PAIR_PROOF:
        dg = PairProof(r.raw(TAG_LEN))
    elif kind == DgType.PAIR_DONE:
        dg = PairDone(r.raw(TAG_LEN))
    elif kind == DgType.ERROR:
        status = r.u8()
        detail = r.rest()
        if len(detail) > MAX_ERROR_DETAIL:
            raise DecodeError("error detail too long")
        try:
            return ErrorDg(Status(status), detail)
        except ValueError as err:
            raise DecodeError(f"unknown status 0x{status:02x}") from err
    else:
        raise DecodeError(f"unknown datagram type 0x{kind:02x}")
    r.end()
    return dg


def _exact(value: bytes, n: int) -> bytes:
    if len(value) != n:
        raise ValueError(f"field must be {n} bytes, got {len(value)}")
    return value
