"""Session and message layers over the loopback carrier: retransmission, reply cache,
re-handshake, batching, paging, status mapping, version negotiation, access requests."""

from __future__ import annotations

import asyncio
import os

import pytest
from lockgate_sim.lock import SimLockSpec

from drivers.base import AccessAnswer, BoltState, Credential, CredentialKind, EventKind
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    CredentialRejectedError,
    DuplicateCodeError,
    LockTimeoutError,
    OutcomeUnknownError,
    ProtocolError,
    UnsupportedError,
)
from drivers.lockproto import convert
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.crypto import private_key, public_bytes
from drivers.lockproto.messages import MsgType
from drivers.lockproto.records import PutCredentials
from drivers.lockproto.status import Status
from tests.proto.loopback import Tamper
from tests.proto.pairs import make_pair


def code(i: int, secret: str | None = None) -> Credential:
    return Credential(f"cred-{i:04d}", CredentialKind.CODE,
                      (secret or f"{100000 + i}").encode(), i.to_bytes(8, "little"))


def drop_first(kind: str, count: int = 1) -> Tamper:
    left = {"n": count}

    def tamper(direction: str, data: bytes) -> bytes | None:
        if direction == kind and data[0] == dgm.DgType.DATA and left["n"]:
            left["n"] -= 1
            return None
        return data

    return tamper


async def test_lost_reply_is_answered_from_the_reply_cache() -> None:
    pair = await make_pair(tamper=drop_first("to_gateway"))
    await pair.session.open()
    await pair.client.unlock(None)
    assert pair.session.stats.retransmissions == 1
    assert pair.engine.stats.duplicates == 1
    unlocked = [e for e in pair.engine.lock.log if e.kind is EventKind.UNLOCKED]
    assert len(unlocked) == 1  # executed once although sent twice


async def test_lost_request_is_sent_again() -> None:
    pair = await make_pair(tamper=drop_first("to_lock"))
    await pair.session.open()
    await pair.client.lock()
    assert pair.session.stats.retransmissions == 1
    assert pair.engine.stats.duplicates == 0


async def test_silent_lock_times_out() -> None:
    pair = await make_pair(tamper=drop_first("to_gateway", count=99))
    await pair.session.open()
    with pytest.raises(LockTimeoutError):
        await pair.client.status()
    assert pair.session.stats.retransmissions == 2  # FAST: 3 attempts
    # a bolt command that got no answer may have run: it says so, and is not sent again
    await pair.session.open()
    with pytest.raises(OutcomeUnknownError):
        await pair.client.lock()
    assert pair.session.stats.retransmissions == 4
    assert pair.session.stats.handshakes == 2


async def test_lock_reboot_means_a_new_handshake_and_the_request_goes_through() -> None:
    pair = await make_pair(boot_time=0.0)
    await pair.client.lock()
    pair.engine.lock.reboot()
    assert (await pair.client.status()).bolt is BoltState.LOCKED
    assert pair.session.stats.handshakes == 2
    assert pair.engine.refusals.counts == {"no_session": 1}
    await pair.client.unlock(None)
    assert pair.engine.lock.bolt is BoltState.UNLOCKED


async def test_an_unlock_into_a_session_the_lock_lost_is_reported_not_repeated() -> None:
    # the lock's NO_SESSION is not authenticated: the gateway cannot tell it from a forged
    # one sent while the lock did unlock, so it reports the outcome as unknown
    pair = await make_pair(boot_time=0.0)
    await pair.client.lock()
    pair.engine.lock.reboot()
    with pytest.raises(OutcomeUnknownError, match="unauthenticated session_lost"):
        await pair.client.unlock(None)
    assert pair.engine.lock.bolt is BoltState.LOCKED  # (here it did not)
    assert pair.session.stats.handshakes == 1


async def test_a_foreign_hello_does_not_break_the_session_in_use() -> None:
    pair = await make_pair()
    await pair.client.lock()  # the first sealed request makes the new session current
    eph = public_bytes(private_key(os.urandom(32)))
    hello = dgm.Hello(1, 1, pair.keys.gateway_id, os.urandom(16), eph)  # the id is public
    assert isinstance(dgm.decode(await pair.engine.handle(dgm.encode(hello)) or b""),
                      dgm.HelloReply)
    await pair.client.lock()
    assert pair.session.stats.handshakes == 1


async def test_version_negotiation() -> None:
    pair = await make_pair()
    eph = public_bytes(private_key(os.urandom(32)))
    future = dgm.Hello(2, 9, pair.keys.gateway_id, os.urandom(16), eph)
    reply = dgm.decode(await pair.engine.handle(dgm.encode(future)) or b"")
    assert reply == dgm.ErrorDg(Status.VERSION_UNSUPPORTED, b"\x01\x01")
    wide = dgm.Hello(1, 9, pair.keys.gateway_id, os.urandom(16), eph)
    answer = dgm.decode(await pair.engine.handle(dgm.encode(wide)) or b"")
    assert isinstance(answer, dgm.HelloReply) and answer.version == 1


async def test_big_batches_are_cut_to_the_lock_s_message_size() -> None:
    spec = SimLockSpec(slots=300, max_batch=50)
    pair = await make_pair(spec=spec, max_message=300)
    result = await pair.client.put_credentials([code(i) for i in range(120)])
    assert result.ok
    assert pair.engine.stats.requests > 120 // 50 + 1  # cut by bytes, not only by count
    listed = await pair.client.list_credentials()
    assert sorted(c.credential_id for c in listed) == [f"cred-{i:04d}" for i in range(120)]
    assert all(c.tag == int(c.credential_id[5:]).to_bytes(8, "little") for c in listed)
    deleted = await pair.client.delete_credentials([f"cred-{i:04d}" for i in range(0, 120, 2)]
                                                   + ["never-there"])
    assert deleted.ok
    assert len(await pair.client.list_credentials()) == 60


async def test_per_credential_refusals_map_to_driver_errors() -> None:
    spec = SimLockSpec(slots=3, max_batch=10, kinds=frozenset({CredentialKind.CODE}))
    pair = await make_pair(spec=spec)
    pair.engine.lock.faults.reject_ids.add("cred-0006")
    batch = [
        code(1), code(2, "12"), code(3, "100001"),  # ok, too short, duplicate of 1
        Credential("card-1", CredentialKind.CARD, b"4242", bytes(8)),
        code(4), code(5), code(6), code(7),
        Credential("x" * 65, CredentialKind.CODE, b"1234", bytes(8)),
    ]
    result = await pair.client.put_credentials(batch)
    errors = {cid: type(err) for cid, err in result.failures.items()}
    assert errors == {
        "cred-0002": CodeRuleError,
        "cred-0003": DuplicateCodeError,
        "card-1": UnsupportedError,
        "cred-0006": CredentialRejectedError,
        "cred-0007": CapacityError,  # slots 1, 4 and 5 are taken
        "x" * 65: UnsupportedError,  # refused by the driver, never sent
    }
    assert all(err.lock_id == "lock-1" and err.credential_id == cid
               for cid, err in result.failures.items())


async def test_more_than_max_batch_is_too_large() -> None:
    pair = await make_pair(spec=SimLockSpec(max_batch=2))
    body = PutCredentials(tuple(convert.credential_to_record(code(i)) for i in range(3)))
    reply = await pair.session.request(MsgType.PUT_CREDENTIALS, body.encode())
    assert reply.status is Status.TOO_LARGE
    with pytest.raises(ProtocolError):
        await pair.client.call(MsgType.PUT_CREDENTIALS, body.encode())
    assert (await pair.client.put_credentials([code(i) for i in range(5)])).ok  # cut to 2s


async def test_events_read_acknowledge_and_time() -> None:
    pair = await make_pair()
    await pair.client.unlock(1.5)
    await pair.client.lock()
    page = await pair.client.fetch_events(0, 100)
    assert [e.kind for e in page.events] == [EventKind.UNLOCKED, EventKind.LOCKED]
    assert page.next_seq == page.events[-1].seq
    await pair.client.ack_events(page.next_seq)
    assert pair.engine.lock.log == []
    empty = await pair.client.fetch_events(page.next_seq, 100)
    assert empty.events == [] and empty.next_seq == page.next_seq
    poll = await pair.client.poll()
    assert poll.last_seq == page.next_seq  # remembered although the log was freed


async def test_access_request_round_trip() -> None:
    pair = await make_pair()
    lock = pair.engine.lock
    door = asyncio.create_task(lock.enter_code("9999"), name="keypad")
    for _ in range(100):
        poll = await pair.client.poll()
        if poll.request is not None:
            break
        await asyncio.sleep(0)
    assert poll.request is not None and poll.request.secret == b"9999"
    assert await pair.client.answer(poll.request.handle,
                                    AccessAnswer(True, "valid", "cred-cloud-1"))
    assert await asyncio.wait_for(door, 1.0) is True
    last = lock.log[-1]
    assert (last.kind, last.decided_by, last.credential_id) == (
        EventKind.ACCESS_ALLOWED, "gateway", "cred-cloud-1")
    assert not await pair.client.answer(poll.request.handle, AccessAnswer(True, "valid"))


async def test_access_request_expires_and_denies() -> None:
    pair = await make_pair(access_timeout=0.05)
    allowed = await asyncio.wait_for(pair.engine.lock.enter_code("9999"), 1.0)
    assert allowed is False
    assert pair.engine.lock.log[-1].reason == "gateway_unreachable"


async def test_a_late_no_session_during_the_handshake_is_ignored() -> None:
    pair = await make_pair()

    def late_error(direction: str, data: bytes) -> bytes:
        if direction == "to_lock" and data[0] == dgm.DgType.HELLO:
            pair.carrier._queue.put_nowait(dgm.encode(dgm.ErrorDg(Status.NO_SESSION)))
        return data

    pair.carrier.tamper = late_error
    await pair.client.lock()
    assert pair.session.stats.handshakes == 1
    assert pair.session.stats.stale_replies == 1


async def test_a_decision_whose_answer_is_lost_is_logged_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # PollReplies (what both drivers use) asks the gateway, answers, and on an unknown outcome
    # (every reply to the ACCESS_ANSWER lost behind a forged NO_SESSION) neither raises into
    # the poll loop nor sends the answer again in a new session
    from drivers.base import AccessRequest, DriverContext
    from drivers.lockproto.requests import PollReplies

    pair = await make_pair()
    lock = pair.engine.lock
    door = asyncio.create_task(lock.enter_code("9999"), name="keypad")
    for _ in range(100):
        poll = await pair.client.poll()
        if poll.request is not None:
            break
        await asyncio.sleep(0)
    assert poll.request is not None

    async def allow(request: AccessRequest) -> AccessAnswer:
        return AccessAnswer(True, "valid", "cred-cloud-1")

    def forge(direction: str, data: bytes) -> bytes | None:
        if direction == "to_gateway" and data[0] == dgm.DgType.DATA:
            return dgm.encode(dgm.ErrorDg(Status.NO_SESSION))
        return data

    pair.carrier.tamper = forge
    replies = PollReplies("lock-1", DriverContext(now=lambda: lock.now(), keystore=None,  # type: ignore[arg-type]
                                                  decide=allow))
    executed = pair.engine.stats.requests
    await replies.decide(pair.client, poll.request)
    assert await asyncio.wait_for(door, 1.0) is True  # the lock got the answer, once
    assert pair.engine.stats.requests == executed + 1
    assert pair.session.stats.handshakes == 1
    assert any("may or may not" in r.getMessage() for r in caplog.records)
