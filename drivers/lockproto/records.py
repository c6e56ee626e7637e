"""Bodies of the messages (docs/protocol.md §7.3): one class per body, ``encode``/``decode``.

Times are u32 seconds since 1970-01-01 UTC; strings are UTF-8 with a one-byte length.
``decode`` raises :class:`~drivers.lockproto.errors.DecodeError` on anything malformed,
including trailing bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from drivers.lockproto.errors import DecodeError
from drivers.lockproto.status import Status
from drivers.lockproto.wire import Reader, Writer

TAG_LEN = 8
MAX_ID_LEN = 64
MAX_SECRET_LEN = 64
MAX_PROOF_LEN = 128
MAX_REASON_LEN = 32
LIST_END = 0xFFFF
NO_BATTERY = 0xFF


class WireKind(enum.IntEnum):
    CODE = 1
    CARD = 2
    MOBILE_KEY = 3


class WireBolt(enum.IntEnum):
    UNKNOWN = 0
    LOCKED = 1
    UNLOCKED = 2
    JAMMED = 3


class WireEvent(enum.IntEnum):
    ACCESS_ALLOWED = 1
    ACCESS_DENIED = 2
    LOCKED = 3
    UNLOCKED = 4
    TAMPER = 5
    REBOOTED = 6
    BATTERY_LOW = 7


class DecidedBy(enum.IntEnum):
    NONE = 0
    LOCK = 1
    GATEWAY = 2


class InfoFlag(enum.IntFlag):
    ENFORCES_TIME_WINDOWS = 0x01
    HAS_KEYPAD = 0x02
    HAS_CARD_READER = 0x04
    ONLINE_VALIDATION = 0x08


class PollFlag(enum.IntFlag):
    ACCESS_REQUEST = 0x01
    MORE_REQUESTS = 0x02
    TAMPER = 0x04
    TIME_UNSET = 0x08


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _enum(cls: type[enum.IntEnum], value: int) -> int:
    try:
        return int(cls(value))
    except ValueError as err:
        raise DecodeError(f"{cls.__name__} has no value {value}") from err


# --- credentials -----------------------------------------------------------------------------
_HAS_START = 0x01
_HAS_END = 0x02


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    kind: int
    credential_id: str
    tag: bytes
    secret: bytes | None = field(default=None, repr=False)
    """Present in PUT_CREDENTIALS only; a lock never sends a secret back."""
    starts: int | None = None
    ends: int | None = None

    def write(self, w: Writer, *, with_secret: bool) -> None:
        flags = (_HAS_START if self.starts is not None else 0) | (
            _HAS_END if self.ends is not None else 0
        )
        w.u8(self.kind).u8(flags).str8(self.credential_id).raw(self.tag)
        if with_secret:
            w.bytes8(self.secret or b"")
        if self.starts is not None:
            w.u32(self.starts)
        if self.ends is not None:
            w.u32(self.ends)

    @classmethod
    def read(cls, r: Reader, *, with_secret: bool) -> CredentialRecord:
        kind = _enum(WireKind, r.u8())
        flags = r.u8()
        if flags & ~(_HAS_START | _HAS_END):
            raise DecodeError("reserved credential flags set")
        cid = r.str8(MAX_ID_LEN)
        if not cid:
            raise DecodeError("empty credential id")
        tag = r.raw(TAG_LEN)
        secret = r.bytes8(MAX_SECRET_LEN) if with_secret else None
        starts = r.u32() if flags & _HAS_START else None
        ends = r.u32() if flags & _HAS_END else None
        return cls(kind, cid, tag, secret, starts, ends)

    def size(self, *, with_secret: bool) -> int:
        w = Writer()
        self.write(w, with_secret=with_secret)
        return len(w)


@dataclass(frozen=True, slots=True)
class PutCredentials:
    entries: tuple[CredentialRecord, ...]

    def encode(self) -> bytes:
        w = Writer().u8(len(self.entries))
        for entry in self.entries:
            entry.write(w, with_secret=True)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> PutCredentials:
        r = Reader(data)
        entries = tuple(CredentialRecord.read(r, with_secret=True) for _ in range(r.u8()))
        r.end()
        return cls(entries)


@dataclass(frozen=True, slots=True)
class DeleteCredentials:
    credential_ids: tuple[str, ...]

    def encode(self) -> bytes:
        w = Writer().u8(len(self.credential_ids))
        for cid in self.credential_ids:
            w.str8(cid)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> DeleteCredentials:
        r = Reader(data)
        ids = tuple(r.str8(MAX_ID_LEN) for _ in range(r.u8()))
        r.end()
        return cls(ids)


@dataclass(frozen=True, slots=True)
class BatchResults:
    """One status per entry of a PUT or DELETE, in the request's order."""

    statuses: tuple[Status, ...]

    def encode(self) -> bytes:
        return Writer().u8(len(self.statuses)).raw(bytes(self.statuses)).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> BatchResults:
        r = Reader(data)
        raw = r.raw(r.u8())
        r.end()
        return cls(tuple(Status(_enum(Status, b)) for b in raw))


@dataclass(frozen=True, slots=True)
class ListCredentials:
    cursor: int = 0
    max_count: int = 255

    def encode(self) -> bytes:
        return Writer().u16(self.cursor).u8(self.max_count).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> ListCredentials:
        r = Reader(data)
        rec = cls(r.u16(), r.u8())
        r.end()
        return rec


@dataclass(frozen=True, slots=True)
class CredentialPage:
    next_cursor: int
    entries: tuple[CredentialRecord, ...]

    def encode(self) -> bytes:
        w = Writer().u16(self.next_cursor).u8(len(self.entries))
        for entry in self.entries:
            entry.write(w, with_secret=False)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> CredentialPage:
        r = Reader(data)
        cursor = r.u16()
        entries = tuple(CredentialRecord.read(r, with_secret=False) for _ in range(r.u8()))
        r.end()
        return cls(cursor, entries)


# --- device ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceInfo:
    firmware: str
    slots: int
    used: int
    max_batch: int
    max_message: int
    """The longest request plaintext (message header included) the lock accepts."""
    kinds: frozenset[int]
    flags: InfoFlag
    code_min: int
    code_max: int
    code_alphabet: str
    reply_ms: int
    """The longest the lock takes to start answering any request, wire time excluded."""

    def encode(self) -> bytes:
        kinds = sum(1 << (k - 1) for k in self.kinds)
        w = Writer().str8(self.firmware).u16(self.slots).u16(self.used).u16(self.max_batch)
        w.u16(self.max_message).u8(kinds).u8(self.flags).u8(self.code_min).u8(self.code_max)
        return w.str8(self.code_alphabet).u16(self.reply_ms).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> DeviceInfo:
        r = Reader(data)
        firmware = r.str8(64)
        slots, used, max_batch, max_message = r.u16(), r.u16(), r.u16(), r.u16()
        kind_bits, flags = r.u8(), r.u8()
        kinds = frozenset(k for k in WireKind if kind_bits & (1 << (k - 1)))
        info = cls(
            firmware,
            slots,
            used,
            max_batch,
            max_message,
            frozenset(int(k) for k in kinds),
            InfoFlag(flags & 0x0F),
            r.u8(),
            r.u8(),
            r.str8(64),
            r.u16(),
        )
        r.end()
        if info.max_message < 64 or info.max_batch < 1:
            raise DecodeError("lock announces an unusable message size or batch")
        return info


@dataclass(frozen=True, slots=True)
class StatusRecord:
    bolt: int
    battery: int
    tamper: bool
    lock_time: int

    def encode(self) -> bytes:
        w = Writer().u8(self.bolt).u8(self.battery).u8(1 if self.tamper else 0)
        return w.u32(self.lock_time).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> StatusRecord:
        r = Reader(data)
        rec = cls(_enum(WireBolt, r.u8()), r.u8(), bool(r.u8() & 1), r.u32())
        r.end()
        return rec


@dataclass(frozen=True, slots=True)
class U32Body:
    """SET_TIME (unix seconds) and ACK_EVENTS (up_to_seq)."""

    value: int

    def encode(self) -> bytes:
        return Writer().u32(self.value).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> U32Body:
        r = Reader(data)
        rec = cls(r.u32())
        r.end()
        return rec


@dataclass(frozen=True, slots=True)
class UnlockBody:
    hold_ds: int
    """Tenths of a second before the lock relocks by itself; 0 = the lock's own policy."""

    def encode(self) -> bytes:
        return Writer().u16(self.hold_ds).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> UnlockBody:
        r = Reader(data)
        rec = cls(r.u16())
        r.end()
        return rec


# --- audit log -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReadEvents:
    after_seq: int
    max_count: int

    def encode(self) -> bytes:
        return Writer().u32(self.after_seq).u8(self.max_count).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> ReadEvents:
        r = Reader(data)
        rec = cls(r.u32(), r.u8())
        r.end()
        return rec


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    at: int
    kind: int
    credential_kind: int = 0
    decided_by: int = DecidedBy.NONE
    credential_id: str = ""
    reason: str = ""

    def write(self, w: Writer) -> None:
        w.u32(self.seq).u32(self.at).u8(self.kind).u8(self.credential_kind)
        w.u8(self.decided_by).str8(self.credential_id).str8(self.reason)

    @classmethod
    def read(cls, r: Reader) -> EventRecord:
        seq, at, kind = r.u32(), r.u32(), _enum(WireEvent, r.u8())
        ckind = r.u8()
        if ckind:
            _enum(WireKind, ckind)
        return cls(
            seq,
            at,
            kind,
            ckind,
            _enum(DecidedBy, r.u8()),
            r.str8(MAX_ID_LEN),
            r.str8(MAX_REASON_LEN),
        )


@dataclass(frozen=True, slots=True)
class EventPageRecord:
    next_seq: int
    events: tuple[EventRecord, ...]

    def encode(self) -> bytes:
        w = Writer().u32(self.next_seq).u8(len(self.events))
        for event in self.events:
            event.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> EventPageRecord:
        r = Reader(data)
        next_seq = r.u32()
        events = tuple(EventRecord.read(r) for _ in range(r.u8()))
        r.end()
        return cls(next_seq, events)


# --- access requests -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccessRequestRecord:
    handle: int
    kind: int
    at: int
    secret: bytes = field(repr=False)
    proof: bytes = field(default=b"", repr=False)

    def write(self, w: Writer) -> None:
        w.u16(self.handle).u8(self.kind).u32(self.at).bytes8(self.secret).bytes8(self.proof)

    @classmethod
    def read(cls, r: Reader) -> AccessRequestRecord:
        return cls(
            r.u16(),
            _enum(WireKind, r.u8()),
            r.u32(),
            r.bytes8(MAX_SECRET_LEN),
            r.bytes8(MAX_PROOF_LEN),
        )


@dataclass(frozen=True, slots=True)
class PollReply:
    flags: PollFlag
    last_seq: int
    request: AccessRequestRecord | None = None

    def encode(self) -> bytes:
        flags = self.flags & ~PollFlag.ACCESS_REQUEST
        if self.request is not None:
            flags |= PollFlag.ACCESS_REQUEST
        w = Writer().u8(flags).u32(self.last_seq)
        if self.request is not None:
            self.request.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> PollReply:
        if len(data) == _POLL_HEAD.size:  # nothing to decide: most polls of a quiet lock
            bits, last_seq = _POLL_HEAD.unpack(data)
            if not bits & _ACCESS_REQUEST:
                return cls(_POLL_FLAGS[bits & 0x0F], last_seq)
        r = Reader(data)
        flags = _POLL_FLAGS[r.u8() & 0x0F]
        last_seq = r.u32()
        request = AccessRequestRecord.read(r) if flags & PollFlag.ACCESS_REQUEST else None
        r.end()
        return cls(flags, last_seq, request)


_POLL_HEAD = struct.Struct("<BI")
"""A POLL reply without a request: flags, the newest audit-log sequence number."""
_POLL_FLAGS = tuple(PollFlag(bits) for bits in range(16))
_ACCESS_REQUEST = int(PollFlag.ACCESS_REQUEST)


@dataclass(frozen=True, slots=True)
class AccessAnswerRecord:
    handle: int
    allow: bool
    reason: str
    credential_id: str = ""

    def encode(self) -> bytes:
        w = Writer().u16(self.handle).u8(1 if self.allow else 0)
        return w.str8(clip(self.reason, MAX_REASON_LEN)).str8(self.credential_id).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> AccessAnswerRecord:
        r = Reader(data)
        rec = cls(r.u16(), bool(r.u8() & 1), r.str8(MAX_REASON_LEN), r.str8(MAX_ID_LEN))
        r.end()
        return rec
