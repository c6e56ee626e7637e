"""Attacker's side: datagrams raced in on the link right after the gateway's (issue 10,
finding 8). The attacker knows everything public (the gateway id, the protocol) and nothing
secret; it cannot finish a session or a pairing, only try to push the gateway's out.

* A PAIR_START raced in used to replace the gateway's pairing attempt, so the gateway's proof
  failed; five of those rate-limited the lock until someone reset it by hand.
* A HELLO raced in after each real one used to replace the gateway's pending session, so its
  first DATA got NO_SESSION, every time: no new session could open.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from lockgate_sim.proto_lock import LockEngine

from drivers.base import BoltState
from drivers.errors import LockBusyError
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.client import ClientSession
from drivers.lockproto.crypto import parse_pairing_secret, private_key, public_bytes
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.pairing import commission
from drivers.lockproto.status import Status
from tests.proto.loopback import LoopbackCarrier, make_engine
from tests.proto.pairs import FAST


class RacingCarrier(LoopbackCarrier):
    """After every gateway datagram of type ``race``, the attacker's own one reaches the lock;
    the lock's answer to it is on the shared line too (the gateway hears it)."""

    def __init__(self, engine: LockEngine, *, race: int, forge: Callable[[], bytes]) -> None:
        super().__init__(engine)
        self.race, self.forge, self.raced = race, forge, 0

    async def send(self, datagram: bytes) -> None:
        await super().send(datagram)
        if datagram[0] == self.race:
            self.raced += 1
            reply = await self.engine.handle(self.forge())
            if reply is not None:
                self._queue.put_nowait(reply)


def attacker_pair_start() -> bytes:
    static = public_bytes(private_key(os.urandom(32)))
    return dgm.encode(dgm.PairStart(1, 1, os.urandom(16), static))


def attacker_pair_proof() -> bytes:
    return dgm.encode(dgm.PairProof(os.urandom(16)))


async def test_pair_start_raced_in_after_the_gateways_does_not_stop_commissioning() -> None:
    engine = make_engine()
    carrier = RacingCarrier(engine, race=dgm.DgType.PAIR_START, forge=attacker_pair_start)
    secret = parse_pairing_secret(engine.pairing_secret)
    keys = await commission(carrier, secret, lock_id="lock-1", timing=FAST)
    assert carrier.raced >= 1
    assert engine.store.commissioned
    assert engine.responder.pairing_failures == 0
    session = ClientSession(carrier, keys, lock_id="lock-1", timing=FAST)
    await LockClient(session).unlock(None)
    assert engine.lock.bolt is BoltState.UNLOCKED


async def test_raced_pair_starts_and_bad_proofs_rate_limit_pairing_for_a_while_only() -> None:
    now = {"t": 1000.0}
    engine = make_engine(pairing_cooldown=30.0, monotonic=lambda: now["t"])
    carrier = LoopbackCarrier(engine)
    for _ in range(5):  # the attacker's own attempts, each with a proof it cannot make
        assert isinstance(dgm.decode(await engine.handle(attacker_pair_start()) or b""),
                          dgm.PairChallenge)
        reply = dgm.decode(await engine.handle(attacker_pair_proof()) or b"")
        assert reply == dgm.ErrorDg(Status.PAIRING_FAILED)
    secret = parse_pairing_secret(engine.pairing_secret)
    with pytest.raises(LockBusyError, match="rate_limited"):
        await commission(carrier, secret, lock_id="lock-1", timing=FAST)
    now["t"] += 31.0  # no reset, no power cycle: the attacker has only bought half a minute
    await commission(carrier, secret, lock_id="lock-1", timing=FAST)
    assert engine.store.commissioned


async def test_a_wrong_proof_raced_in_cancels_nobody_elses_pairing_attempt() -> None:
    # right behind the gateway's PAIR_START, the attacker sends a proof of its own: the lock
    # refuses it (and says so on the line, unauthenticated), the gateway's attempt lives on
    engine = make_engine()
    carrier = RacingCarrier(engine, race=dgm.DgType.PAIR_START, forge=attacker_pair_proof)
    secret = parse_pairing_secret(engine.pairing_secret)
    await commission(carrier, secret, lock_id="lock-1", timing=FAST)
    assert engine.store.commissioned
    assert carrier.raced == 1
    assert engine.responder.pairing_failures == 1


async def test_hello_raced_in_after_each_real_one_does_not_block_new_sessions() -> None:
    engine = make_engine(boot_time=0.0)
    plain = LoopbackCarrier(engine)
    keys = await commission(plain, parse_pairing_secret(engine.pairing_secret),
                            lock_id="lock-1", timing=FAST)

    def attacker_hello() -> bytes:  # the gateway id is public: it is in every HELLO
        eph = public_bytes(private_key(os.urandom(32)))
        return dgm.encode(dgm.Hello(1, 1, keys.gateway_id, os.urandom(16), eph))

    carrier = RacingCarrier(engine, race=dgm.DgType.HELLO, forge=attacker_hello)
    session = ClientSession(carrier, keys, lock_id="lock-1", timing=FAST)
    client = LockClient(session)
    for _ in range(3):  # three new sessions (a lock reboot each time), each one raced
        assert (await client.status()).bolt is BoltState.LOCKED
        engine.lock.reboot()
    assert carrier.raced == 3
    assert session.stats.handshakes == 3
    assert engine.refusals.counts.get("no_session", 0) == 2  # one per reboot, none per race


async def test_a_flood_of_hellos_is_bounded_on_the_lock() -> None:
    engine = make_engine()
    plain = LoopbackCarrier(engine)
    keys = await commission(plain, parse_pairing_secret(engine.pairing_secret),
                            lock_id="lock-1", timing=FAST)
    for _ in range(50):
        eph = public_bytes(private_key(os.urandom(32)))
        await engine.handle(dgm.encode(dgm.Hello(1, 1, keys.gateway_id, os.urandom(16), eph)))
    assert len(engine.responder.pending) <= 4
    assert engine.refusals.counts["pending_evicted"] == 46
