"""The message layer of the lock: one handler per request type, over a SimLock (§7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from drivers.lockproto import convert
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.messages import REPLY_HEADER_LEN, MsgType, Reply, Request, encode_reply
from drivers.lockproto.records import (
    LIST_END,
    NO_BATTERY,
    AccessAnswerRecord,
    BatchResults,
    CredentialPage,
    CredentialRecord,
    DeleteCredentials,
    DeviceInfo,
    EventPageRecord,
    EventRecord,
    InfoFlag,
    ListCredentials,
    PollFlag,
    PollReply,
    PutCredentials,
    ReadEvents,
    StatusRecord,
    U32Body,
    UnlockBody,
    WireKind,
)
from drivers.lockproto.status import Status
from drivers.lockproto.wire import Writer
from lockgate_sim.lock import SimLock, Slot
from lockgate_sim.proto_lock.access import AccessQueue

Handler = Callable[[bytes], Awaitable[tuple[Status, bytes]]]

_REFUSALS = {
    "code_rule": Status.CODE_RULE,
    "capacity": Status.CAPACITY,
    "duplicate": Status.DUPLICATE,
    "unsupported": Status.UNSUPPORTED,
    "rejected": Status.REJECTED,
    "batch_too_large": Status.TOO_LARGE,
}
_OK = (Status.OK, b"")


class LockApp:
    def __init__(
        self, lock: SimLock, access: AccessQueue, *, max_message: int, reply_ms: int
    ) -> None:
        self.lock = lock
        self.access = access
        self.max_message = max_message
        self.reply_ms = reply_ms
        self._handlers: dict[int, Handler] = {
            MsgType.GET_INFO: self._info,
            MsgType.SET_TIME: self._set_time,
            MsgType.GET_STATUS: self._status,
            MsgType.LIST_CREDENTIALS: self._list,
            MsgType.PUT_CREDENTIALS: self._put,
            MsgType.DELETE_CREDENTIALS: self._delete,
            MsgType.LOCK: self._lock,
            MsgType.UNLOCK: self._unlock,
            MsgType.READ_EVENTS: self._read_events,
            MsgType.ACK_EVENTS: self._ack,
            MsgType.POLL: self._poll,
            MsgType.ACCESS_ANSWER: self._answer,
        }

    async def handle(self, req: Request, request_len: int) -> bytes:
        """The reply plaintext. May raise ``LockRebooted`` or ``ConnectionError`` (offline)."""
        handler = self._handlers.get(req.type)
        if handler is None:
            status, body = Status.UNKNOWN_MESSAGE, b""
        elif request_len > self.max_message:
            status, body = Status.TOO_LARGE, b""
        else:
            await self.lock.operate()
            try:
                status, body = await handler(req.body)
            except DecodeError:
                status, body = Status.BAD_REQUEST, b""
        return encode_reply(Reply(req.type, req.req_id, status, body))

    @property
    def _room(self) -> int:
        return self.max_message - REPLY_HEADER_LEN

    # --- device -----------------------------------------------------------------------------
    async def _info(self, body: bytes) -> tuple[Status, bytes]:
        if body:
            raise DecodeError("GET_INFO has no body")
        spec = self.lock.spec
        flags = InfoFlag.HAS_KEYPAD | InfoFlag.ONLINE_VALIDATION
        if spec.enforces_time_windows:
            flags |= InfoFlag.ENFORCES_TIME_WINDOWS
        if spec.has_card_reader:
            flags |= InfoFlag.HAS_CARD_READER
        info = DeviceInfo(
            firmware=spec.firmware,
            slots=spec.slots,
            used=len(self.lock.list_credentials()),
            max_batch=min(spec.max_batch, 255),
            max_message=self.max_message,
            kinds=frozenset(int(convert.KIND_TO_WIRE[k]) for k in spec.kinds),
            flags=flags,
            code_min=spec.code_min_length,
            code_max=spec.code_max_length,
            code_alphabet=spec.code_alphabet,
            reply_ms=self.reply_ms,
        )
        return Status.OK, info.encode()

    async def _set_time(self, body: bytes) -> tuple[Status, bytes]:
        self.lock.set_time(convert.from_unix(U32Body.decode(body).value))
        return _OK

    async def _status(self, body: bytes) -> tuple[Status, bytes]:
        if body:
            raise DecodeError("GET_STATUS has no body")
        lock = self.lock
        battery = NO_BATTERY if lock.battery_percent is None else lock.battery_percent
        rec = StatusRecord(
            convert.BOLT_TO_WIRE[lock.bolt], battery, lock.tamper, convert.to_unix(lock.now())
        )
        return Status.OK, rec.encode()

    async def _lock(self, body: bytes) -> tuple[Status, bytes]:
        if body:
            raise DecodeError("LOCK has no body")
        self.lock.lock()
        return _OK

    async def _unlock(self, body: bytes) -> tuple[Status, bytes]:
        hold = UnlockBody.decode(body).hold_ds
        self.lock.unlock(hold / 10 if hold else None)
        return _OK

    # --- credentials ------------------------------------------------------------------------
    async def _list(self, body: bytes) -> tuple[Status, bytes]:
        req = ListCredentials.decode(body)
        stored = self.lock.list_credentials()
        room = self._room - 3
        entries: list[CredentialRecord] = []
        index = req.cursor
        while index < len(stored) and len(entries) < req.max_count:
            rec = convert.stored_to_record(stored[index])
            size = rec.size(with_secret=False)
            if size > room:
                break
            entries.append(rec)
            room -= size
            index += 1
        next_cursor = LIST_END if index >= len(stored) else index
        return Status.OK, CredentialPage(next_cursor, tuple(entries)).encode()

    async def _put(self, body: bytes) -> tuple[Status, bytes]:
        req = PutCredentials.decode(body)
        if len(req.entries) > self.lock.spec.max_batch:
            return Status.TOO_LARGE, b""
        slots = [
            Slot(
                rec.credential_id,
                convert.WIRE_TO_KIND[WireKind(rec.kind)],
                rec.secret or b"",
                rec.tag,
                convert.window_from_wire(rec.starts, rec.ends),
            )
            for rec in req.entries
        ]
        refused = self.lock.put(slots)
        statuses = tuple(
            _REFUSALS.get(refused[s.credential_id], Status.REJECTED)
            if s.credential_id in refused
            else Status.OK
            for s in slots
        )
        return Status.OK, BatchResults(statuses).encode()

    async def _delete(self, body: bytes) -> tuple[Status, bytes]:
        req = DeleteCredentials.decode(body)
        self.lock.delete(list(req.credential_ids))
        return Status.OK, BatchResults(tuple(Status.OK for _ in req.credential_ids)).encode()

    # --- audit log --------------------------------------------------------------------------
    async def _read_events(self, body: bytes) -> tuple[Status, bytes]:
        req = ReadEvents.decode(body)
        room = self._room - 5
        records: list[EventRecord] = []
        for event in self.lock.events_after(req.after_seq, req.max_count):
            rec = convert.event_to_record(event)
            w = Writer()
            rec.write(w)
            if len(w) > room:
                break
            records.append(rec)
            room -= len(w)
        next_seq = records[-1].seq if records else req.after_seq
        return Status.OK, EventPageRecord(next_seq, tuple(records)).encode()

    async def _ack(self, body: bytes) -> tuple[Status, bytes]:
        self.lock.ack(U32Body.decode(body).value)
        return _OK

    # --- online decisions -------------------------------------------------------------------
    async def _poll(self, body: bytes) -> tuple[Status, bytes]:
        if body:
            raise DecodeError("POLL has no body")
        flags = PollFlag(0)
        if self.lock.tamper:
            flags |= PollFlag.TAMPER
        if self.access.waiting > 1:
            flags |= PollFlag.MORE_REQUESTS
        return Status.OK, PollReply(flags, self.lock.last_seq, self.access.oldest()).encode()

    async def _answer(self, body: bytes) -> tuple[Status, bytes]:
        rec = AccessAnswerRecord.decode(body)
        return (Status.OK if self.access.answer(rec) else Status.UNKNOWN_HANDLE), b""

