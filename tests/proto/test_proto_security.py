"""Security: replayed sessions, flipped bits, gateways without the lock's keys."""

from __future__ import annotations

import os

import pytest
from lockgate_sim.proto_lock import LockEngine

from drivers.base import BoltState
from drivers.errors import LockAuthError, OutcomeUnknownError
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.channel import SecureChannel
from drivers.lockproto.client import SessionLostError, UnverifiedRefusalError
from drivers.lockproto.crypto import (
    dh,
    parse_pairing_secret,
    private_key,
    public_bytes,
    session_keys,
    session_transcript,
)
from drivers.lockproto.framing import Deframer, Frame, encode_frame
from drivers.lockproto.keys import LinkKeys
from drivers.lockproto.messages import MsgType, Request, encode_request
from drivers.lockproto.pairing import commission
from drivers.lockproto.records import UnlockBody
from drivers.lockproto.status import Status
from tests.proto.loopback import LoopbackCarrier, make_engine
from tests.proto.pairs import FAST, make_pair


def _state(pair_engine: LockEngine) -> tuple[object, ...]:
    lock = pair_engine.lock
    return (lock.bolt, len(lock.log), tuple(c.credential_id for c in lock.list_credentials()))


def _bolt(engine: LockEngine) -> BoltState:
    """The lock's bolt, read afresh (a call: mypy keeps no narrowing across awaits for it)."""
    return engine.lock.bolt


async def test_recorded_session_replayed_to_the_lock_does_nothing() -> None:
    pair = await make_pair(boot_time=0.0)
    await pair.client.unlock(None)
    await pair.client.lock()
    recorded = [data for direction, data in pair.carrier.log if direction == "to_lock"]
    engine = pair.engine
    before, executed = _state(engine), engine.stats.requests
    refused = engine.refusals.total

    # 1. into the same session: every DATA is refused by its counter
    for data in recorded:
        await engine.handle(data)
    # 2. after the lock lost its sessions (reboot): HELLOs get answers nobody can use,
    #    and the DATA belongs to no session
    engine.lock.reboot()
    replies = [await engine.handle(data) for data in recorded]

    assert engine.lock.bolt is BoltState.LOCKED  # the recorded UNLOCK did not run again
    assert _state(engine)[2] == before[2]
    assert engine.stats.requests == executed
    sealed = sum(1 for data in recorded if data[0] == dgm.DgType.DATA)
    assert sealed == 2
    assert engine.refusals.counts["replayed"] == sealed
    assert engine.refusals.counts["no_session"] == sealed
    assert engine.refusals.total > refused
    assert any(r is not None and dgm.decode(r) == dgm.ErrorDg(Status.NO_SESSION)
               for r in replies)
    # the real gateway carries on (handshakes again)
    status = await pair.client.status()
    assert status.bolt is BoltState.LOCKED


async def test_a_flipped_bit_anywhere_in_a_request_is_refused() -> None:
    pair = await make_pair()
    await pair.session.open()
    channel = pair.session._channel
    assert channel is not None
    plaintext = encode_request(Request(MsgType.UNLOCK, 1, UnlockBody(0).encode()))
    original = dgm.encode(channel.seal(plaintext))
    engine = pair.engine
    for bit in range(len(original) * 8):
        mutated = bytearray(original)
        mutated[bit // 8] ^= 1 << (bit % 8)
        reply = await engine.handle(bytes(mutated))
        assert reply is None or dgm.decode(reply) == dgm.ErrorDg(Status.NO_SESSION)
    assert _bolt(engine) is BoltState.LOCKED
    assert engine.stats.requests == 0
    assert engine.refusals.total == len(original) * 8
    # the untouched datagram still works: refusals never moved the counter
    assert await engine.handle(original) is not None
    assert _bolt(engine) is BoltState.UNLOCKED


async def test_a_flipped_bit_anywhere_in_a_reply_is_refused() -> None:
    pair = await make_pair()
    await pair.session.open()
    channel = pair.session._channel
    assert channel is not None
    request = dgm.encode(channel.seal(encode_request(Request(MsgType.POLL, 7))))
    reply = await pair.engine.handle(request)
    assert reply is not None
    for bit in range(len(reply) * 8):
        mutated = bytearray(reply)
        mutated[bit // 8] ^= 1 << (bit % 8)
        assert pair.session.accept_reply(bytes(mutated), MsgType.POLL, 7) is None
    assert pair.session.stats.refused_total == len(reply) * 8
    accepted = pair.session.accept_reply(reply, MsgType.POLL, 7)
    assert accepted is not None and accepted.req_id == 7


def test_a_flipped_bit_anywhere_in_a_frame_is_refused() -> None:
    wire = encode_frame(Frame(5, False, b"\x03" + bytes(range(1, 60))))
    for bit in range(8, (len(wire) - 1) * 8):  # every bit between the delimiters
        mutated = bytearray(wire)
        mutated[bit // 8] ^= 1 << (bit % 8)
        deframer = Deframer()
        assert deframer.feed(bytes(mutated)) == []
        assert deframer.stats.refused_total >= 1


async def test_reordered_and_truncated_requests_are_refused() -> None:
    pair = await make_pair()
    await pair.session.open()
    channel = pair.session._channel
    assert channel is not None
    first = dgm.encode(channel.seal(encode_request(Request(MsgType.LOCK, 1))))
    second = dgm.encode(channel.seal(encode_request(Request(MsgType.UNLOCK, 2, b"\0\0"))))
    engine = pair.engine
    assert await engine.handle(second[:-1]) is None  # truncated: tag fails
    assert await engine.handle(second) is not None
    assert await engine.handle(first) is None  # older counter, after a newer one
    assert engine.refusals.counts == {"forged": 1, "replayed": 1}
    assert engine.lock.bolt is BoltState.UNLOCKED


async def test_gateway_with_its_own_keys_is_refused() -> None:
    pair = await make_pair()
    rogue = LinkKeys(os.urandom(32), pair.keys.lock_static, os.urandom(32), pair.keys.device_id)
    with pytest.raises(UnverifiedRefusalError, match="wrong_gateway"):
        await pair.other_gateway(rogue).unlock(None)
    assert pair.engine.lock.bolt is BoltState.LOCKED


async def test_gateway_without_the_long_term_key_fails_the_handshake() -> None:
    pair = await make_pair()
    # knows the gateway's static key (and so its id), not the long-term key
    rogue = LinkKeys(pair.keys.gateway_static, pair.keys.lock_static, os.urandom(32),
                     pair.keys.device_id)
    with pytest.raises(UnverifiedRefusalError, match="does not verify"):
        await pair.other_gateway(rogue).unlock(None)
    # and whatever it seals with keys of its own making, the lock refuses
    eph = os.urandom(32)
    hello = dgm.Hello(1, 1, rogue.gateway_id, os.urandom(16), public_bytes(private_key(eph)))
    reply = dgm.decode(await pair.engine.handle(dgm.encode(hello)) or b"")
    assert isinstance(reply, dgm.HelloReply)
    th = session_transcript((1, 1), 1, rogue.gateway_id, rogue.device_id, reply.session_id,
                            hello.nonce, reply.nonce, hello.ephemeral, reply.ephemeral)
    keys = session_keys(rogue.long_term_key, dh(eph, reply.ephemeral),
                        dh(rogue.gateway_static, rogue.lock_static), th)
    channel = SecureChannel(reply.session_id, keys.gateway_to_lock, keys.lock_to_gateway)
    unlock = encode_request(Request(MsgType.UNLOCK, 1, b"\0\0"))
    assert await pair.engine.handle(dgm.encode(channel.seal(unlock))) is None
    assert pair.engine.refusals.counts["forged"] == 1
    assert pair.engine.lock.bolt is BoltState.LOCKED


async def test_commissioning_with_a_wrong_secret_fails_and_is_rate_limited() -> None:
    engine = make_engine()
    carrier = LoopbackCarrier(engine)
    right = parse_pairing_secret(engine.pairing_secret)
    wrong = bytes(b ^ 0x01 for b in right)
    for _ in range(5):
        with pytest.raises(LockAuthError, match="pairing_failed"):
            await commission(carrier, wrong, lock_id="lock-1", timing=FAST)
    with pytest.raises(Exception, match="rate_limited"):
        await commission(carrier, right, lock_id="lock-1", timing=FAST)
    assert not engine.store.commissioned
    engine.reset_pairing()
    await commission(carrier, right, lock_id="lock-1", timing=FAST)
    assert engine.store.commissioned


async def test_second_commissioning_is_refused_until_reset() -> None:
    pair = await make_pair()
    secret = parse_pairing_secret(pair.engine.pairing_secret)
    with pytest.raises(LockAuthError, match="not in pairing mode"):
        await commission(pair.carrier, secret, lock_id="lock-1", timing=FAST)
    await pair.client.lock()  # the first gateway still operates it
    pair.engine.reset_pairing()
    with pytest.raises(UnverifiedRefusalError, match="not_commissioned"):
        await pair.client.status()


async def test_man_in_the_middle_swapping_the_static_key_fails_commissioning() -> None:
    engine = make_engine()
    attacker_key = public_bytes(private_key(os.urandom(32)))

    def swap(direction: str, data: bytes) -> bytes:
        dg = dgm.decode(data)
        if isinstance(dg, dgm.PairStart):
            return dgm.encode(dgm.PairStart(dg.version_min, dg.version_max, dg.nonce,
                                            attacker_key))
        return data

    carrier = LoopbackCarrier(engine, tamper=swap)
    secret = parse_pairing_secret(engine.pairing_secret)
    with pytest.raises(LockAuthError):
        await commission(carrier, secret, lock_id="lock-1", timing=FAST)
    assert not engine.store.commissioned


async def test_forged_no_session_costs_one_handshake_only() -> None:
    forged = {"left": 1}

    def forge(direction: str, data: bytes) -> bytes:
        if direction == "to_gateway" and forged["left"] and dgm.decode(data).__class__ is dgm.Data:
            forged["left"] -= 1
            return dgm.encode(dgm.ErrorDg(Status.NO_SESSION))
        return data

    pair = await make_pair(tamper=forge)
    await pair.session.open()
    handshakes = pair.session.stats.handshakes
    status = await pair.client.status()  # the forged error costs a new handshake
    assert status.bolt is BoltState.LOCKED
    assert pair.session.stats.handshakes == handshakes + 1


async def test_session_lost_twice_gives_up() -> None:
    def always(direction: str, data: bytes) -> bytes:
        if direction == "to_gateway" and isinstance(dgm.decode(data), dgm.Data):
            return dgm.encode(dgm.ErrorDg(Status.NO_SESSION))
        return data

    pair = await make_pair(tamper=always)
    with pytest.raises(SessionLostError):
        await pair.client.status()
    # a LOCK is never sent again in a new session: the lock ran it once, the gateway cannot
    # know that (every answer was replaced), and says so
    executed = pair.engine.stats.requests
    with pytest.raises(OutcomeUnknownError, match="lock was sent"):
        await pair.client.lock()
    assert pair.engine.stats.requests == executed + 1

