"""Lock operations in the driver contract's terms, over a :class:`~.client.ClientSession`.

Carrier-independent: the serial driver and the BLE driver both wrap one of these. Batches are
cut into requests that fit both the lock's ``max_batch`` and its ``max_message``; statuses
become :mod:`drivers.errors` classes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from drivers.base import (
    AccessAnswer,
    BatchResult,
    Capabilities,
    Credential,
    EventPage,
    LockStatus,
    StoredCredential,
)
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    CredentialRejectedError,
    DriverError,
    DuplicateCodeError,
    LockBusyError,
    NotFoundError,
    ProtocolError,
    UnsupportedError,
)
from drivers.lockproto import convert
from drivers.lockproto.client import ClientSession
from drivers.lockproto.datagrams import DATA_HEADER_LEN, TAG_LEN
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.messages import REQUEST_HEADER_LEN, MsgType
from drivers.lockproto.records import (
    LIST_END,
    MAX_ID_LEN,
    MAX_SECRET_LEN,
    NO_BATTERY,
    AccessAnswerRecord,
    BatchResults,
    CredentialPage,
    CredentialRecord,
    DeleteCredentials,
    DeviceInfo,
    EventPageRecord,
    InfoFlag,
    ListCredentials,
    PollReply,
    PutCredentials,
    ReadEvents,
    StatusRecord,
    U32Body,
    UnlockBody,
    WireBolt,
    WireKind,
)
from drivers.lockproto.status import Status

log = logging.getLogger(__name__)

_CREDENTIAL_ERRORS: dict[Status, type[DriverError]] = {
    Status.CODE_RULE: CodeRuleError,
    Status.CAPACITY: CapacityError,
    Status.DUPLICATE: DuplicateCodeError,
    Status.UNSUPPORTED: UnsupportedError,
    Status.NOT_FOUND: NotFoundError,
    Status.REJECTED: CredentialRejectedError,
}


class LockRefusedError(DriverError):
    """The lock refused an operation for a reason of its own (``code`` is the status name)."""

    retryable = True

    def __init__(self, status: Status, *, lock_id: str) -> None:
        super().__init__(f"lock refused: {status.name.lower()}", lock_id=lock_id)
        self.code = status.name.lower()
        self.status = status


def status_error(
    status: Status, *, lock_id: str, credential_id: str | None = None
) -> DriverError:
    if status in _CREDENTIAL_ERRORS:
        return _CREDENTIAL_ERRORS[status](
            f"lock refused the credential: {status.name.lower()}",
            lock_id=lock_id,
            credential_id=credential_id,
        )
    if status is Status.BUSY:
        return LockBusyError("lock is busy", lock_id=lock_id)
    if status in (Status.BAD_REQUEST, Status.UNKNOWN_MESSAGE, Status.TOO_LARGE):
        return ProtocolError(f"lock did not understand us: {status.name.lower()}",
                             lock_id=lock_id)
    return LockRefusedError(status, lock_id=lock_id)


def chunk_records(
    records: Sequence[CredentialRecord], max_count: int, max_bytes: int, *, with_secret: bool
) -> list[list[CredentialRecord]]:
    """Cut records into runs of at most ``max_count`` whose bodies fit ``max_bytes``."""
    chunks: list[list[CredentialRecord]] = []
    current: list[CredentialRecord] = []
    size = 1
    for rec in records:
        n = rec.size(with_secret=with_secret)
        if current and (len(current) >= max_count or size + n > max_bytes):
            chunks.append(current)
            current, size = [], 1
        current.append(rec)
        size += n
    if current:
        chunks.append(current)
    return chunks


class LockClient:
    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.lock_id = session.lock_id
        self.info: DeviceInfo | None = None

    async def call(self, mtype: MsgType, body: bytes = b"") -> bytes:
        reply = await self.session.request(mtype, body)
        if reply.status is not Status.OK:
            raise status_error(reply.status, lock_id=self.lock_id)
        return reply.body

    def _decode_error(self, err: DecodeError) -> ProtocolError:
        return ProtocolError(f"lock sent a malformed reply: {err}", lock_id=self.lock_id)

    # --- device -----------------------------------------------------------------------------
    async def device_info(self, *, refresh: bool = False) -> DeviceInfo:
        if self.info is None or refresh:
            try:
                info = DeviceInfo.decode(await self.call(MsgType.GET_INFO))
            except DecodeError as err:
                raise self._decode_error(err) from err
            self.info = info
            if self.session.timing.lock_reply is None:
                self.session.reply_budget = max(info.reply_ms / 1000, 0.01)
            self.session.max_reply = min(
                info.max_message + DATA_HEADER_LEN + TAG_LEN, self.session.carrier.max_datagram
            )
        return self.info

    async def capabilities(self) -> Capabilities:
        info = await self.device_info()
        return Capabilities(
            slots=info.slots,
            max_batch=info.max_batch,
            kinds=frozenset(convert.WIRE_TO_KIND[WireKind(k)] for k in info.kinds),
            enforces_time_windows=bool(info.flags & InfoFlag.ENFORCES_TIME_WINDOWS),
            code_min_length=info.code_min,
            code_max_length=info.code_max,
            code_alphabet=info.code_alphabet,
            has_keypad=bool(info.flags & InfoFlag.HAS_KEYPAD),
            has_card_reader=bool(info.flags & InfoFlag.HAS_CARD_READER),
            online_validation=bool(info.flags & InfoFlag.ONLINE_VALIDATION),
            written_only_by_gateway=True,  # every write needs the session keys (§7)
        )

    async def set_time(self, t: datetime) -> None:
        await self.call(MsgType.SET_TIME, U32Body(convert.to_unix(t)).encode())

    async def status(self) -> LockStatus:
        info = await self.device_info()
        try:
            rec = StatusRecord.decode(await self.call(MsgType.GET_STATUS))
        except DecodeError as err:
            raise self._decode_error(err) from err
        return LockStatus(
            bolt=convert.WIRE_TO_BOLT[WireBolt(rec.bolt)],
            battery_percent=None if rec.battery == NO_BATTERY else rec.battery,
            tamper=rec.tamper,
            lock_time=convert.from_unix(rec.lock_time),
            firmware=info.firmware,
        )

    async def lock(self) -> None:
        await self.call(MsgType.LOCK)

    async def unlock(self, hold_seconds: float | None) -> None:
        hold = 0 if not hold_seconds else max(1, min(0xFFFF, round(hold_seconds * 10)))
        await self.call(MsgType.UNLOCK, UnlockBody(hold).encode())

    # --- credentials ------------------------------------------------------------------------
    async def list_credentials(self) -> list[StoredCredential]:
        found: dict[str, StoredCredential] = {}
        cursor = 0
        while True:
            try:
                page = CredentialPage.decode(
                    await self.call(MsgType.LIST_CREDENTIALS, ListCredentials(cursor).encode())
                )
            except DecodeError as err:
                raise self._decode_error(err) from err
            for rec in page.entries:
                found[rec.credential_id] = convert.record_to_stored(rec)
            if page.next_cursor == LIST_END:
                return list(found.values())
            if page.next_cursor <= cursor:
                raise ProtocolError("lock's list cursor went backwards", lock_id=self.lock_id)
            cursor = page.next_cursor

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        info = await self.device_info()
        failures: dict[str, DriverError] = {}
        records: list[CredentialRecord] = []
        for cred in batch:
            problem = _too_big(cred)
            if problem:
                failures[cred.credential_id] = UnsupportedError(
                    problem, lock_id=self.lock_id, credential_id=cred.credential_id
                )
            else:
                records.append(convert.credential_to_record(cred))
        max_count = min(info.max_batch, 255)
        for chunk in chunk_records(
            records, max_count, info.max_message - REQUEST_HEADER_LEN, with_secret=True
        ):
            body = PutCredentials(tuple(chunk)).encode()
            ids = [rec.credential_id for rec in chunk]
            failures.update(await self._batch(MsgType.PUT_CREDENTIALS, body, ids))
        return BatchResult(failures)

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        info = await self.device_info()
        max_count = min(info.max_batch, 255)
        budget = info.max_message - REQUEST_HEADER_LEN - 1
        failures: dict[str, DriverError] = {}
        ids = list(dict.fromkeys(credential_ids))
        start = 0
        while start < len(ids):
            chunk: list[str] = []
            size = 0
            for cid in ids[start:]:
                n = 1 + len(cid.encode("utf-8"))
                if chunk and (len(chunk) >= max_count or size + n > budget):
                    break
                chunk.append(cid)
                size += n
            start += len(chunk)
            body = DeleteCredentials(tuple(chunk)).encode()
            result = await self._batch(MsgType.DELETE_CREDENTIALS, body, chunk)
            failures.update(
                {cid: err for cid, err in result.items() if not isinstance(err, NotFoundError)}
            )
        return BatchResult(failures)

    async def _batch(
        self, mtype: MsgType, body: bytes, ids: Sequence[str]
    ) -> dict[str, DriverError]:
        try:
            results = BatchResults.decode(await self.call(mtype, body))
        except DecodeError as err:
            raise self._decode_error(err) from err
        if len(results.statuses) != len(ids):
            raise ProtocolError("lock answered a batch with a wrong count", lock_id=self.lock_id)
        return {
            cid: status_error(st, lock_id=self.lock_id, credential_id=cid)
            for cid, st in zip(ids, results.statuses, strict=True)
            if st is not Status.OK
        }

    # --- audit log --------------------------------------------------------------------------
    async def fetch_events(self, after_seq: int, limit: int) -> EventPage:
        body = ReadEvents(after_seq, max(1, min(255, limit))).encode()
        try:
            page = EventPageRecord.decode(await self.call(MsgType.READ_EVENTS, body))
            events = [convert.record_to_event(rec) for rec in page.events]
        except (DecodeError, ValueError, KeyError) as err:
            raise ProtocolError(f"malformed event page: {err}", lock_id=self.lock_id) from err
        return EventPage(events, page.next_seq if events else after_seq)

    async def ack_events(self, up_to_seq: int) -> None:
        await self.call(MsgType.ACK_EVENTS, U32Body(up_to_seq).encode())

    # --- online decisions -------------------------------------------------------------------
    async def poll(self) -> PollReply:
        try:
            return PollReply.decode(await self.call(MsgType.POLL))
        except DecodeError as err:
            raise self._decode_error(err) from err

    async def answer(self, handle: int, answer: AccessAnswer) -> bool:
        """Send the gateway's decision; ``False`` when the lock had given up waiting."""
        body = AccessAnswerRecord(
            handle, answer.allow, answer.reason, answer.credential_id or ""
        ).encode()
        reply = await self.session.request(MsgType.ACCESS_ANSWER, body)
        if reply.status is Status.UNKNOWN_HANDLE:
            return False
        if reply.status is not Status.OK:
            raise status_error(reply.status, lock_id=self.lock_id)
        return True


def _too_big(cred: Credential) -> str | None:
    if not cred.credential_id or len(cred.credential_id.encode("utf-8")) > MAX_ID_LEN:
        return f"credential id must be 1..{MAX_ID_LEN} UTF-8 bytes"
    if len(cred.secret) > MAX_SECRET_LEN:
        return f"secret longer than {MAX_SECRET_LEN} bytes"
    if len(cred.tag) != 8:
        return "tag must be 8 bytes"
    return None

