"""Pairing and per-connection handshake, lock side (docs/protocol.md §5, §6).

The lock keeps a *current* session and up to :data:`MAX_PENDING` *pending* ones that HELLOs
created. A pending one replaces the current one only when a DATA datagram sealed with its
keys arrives (this proves the gateway derived the same keys), so a forged HELLO cannot break
the session in use; and since a HELLO no longer replaces the pending session of another, a
HELLO raced in after the gateway's cannot stop the gateway's new session either. Each session
remembers the last ``req_id`` it answered and the reply, and answers a retransmitted request
from there without executing it again.

Pairing keeps up to :data:`MAX_PAIRING_ATTEMPTS` attempts in progress and checks a PAIR_PROOF
against each, so a PAIR_START raced in does not replace the gateway's attempt; a proof that
verifies against none is counted, and after :data:`MAX_PAIRING_FAILURES` of them the lock
refuses PAIR_START for ``pairing_cooldown`` seconds (not until a reset: the 128-bit secret
cannot be guessed anyway, and an attacker must not be able to disable pairing for good).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.lockproto import datagrams as dgm
from drivers.lockproto.channel import SecureChannel
from drivers.lockproto.crypto import (
    VERSION_MAX,
    VERSION_MIN,
    PairingKeys,
    Rng,
    dh,
    pairing_keys,
    pairing_transcript,
    private_key,
    public_bytes,
    same,
    session_keys,
    session_transcript,
)
from drivers.lockproto.errors import LockProtoError
from drivers.lockproto.status import Status
from lockgate_sim.proto_lock.link_store import LinkStore

MAX_PAIRING_FAILURES = 5
MAX_PENDING = 4
"""Pending sessions kept at once: an attacker must send this many HELLOs between the gateway's
HELLO and its first DATA to push the gateway's out."""
MAX_PAIRING_ATTEMPTS = 4
PAIRING_COOLDOWN = 30.0


@dataclass(slots=True)
class Session:
    channel: SecureChannel
    last_req_id: int | None = None
    last_reply: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Pending:
    session: Session
    hello_raw: bytes
    reply: bytes


@dataclass(slots=True)
class _Pairing:
    start: dgm.PairStart
    start_raw: bytes
    challenge: bytes
    transcript: bytes
    keys: PairingKeys = field(repr=False)


@dataclass(slots=True)
class Refusals:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _error(status: Status, detail: bytes = b"") -> bytes:
    return dgm.encode(dgm.ErrorDg(status, detail))


def negotiate(version_min: int, version_max: int) -> int | None:
    best = min(version_max, VERSION_MAX)
    return best if best >= max(version_min, VERSION_MIN) else None


class Responder:
    def __init__(
        self,
        store: LinkStore,
        *,
        rng: Rng,
        refusals: Refusals,
        monotonic: Callable[[], float] = time.monotonic,
        pairing_cooldown: float = PAIRING_COOLDOWN,
    ) -> None:
        self.store = store
        self.refusals = refusals
        self.current: Session | None = None
        self.pending: dict[int, _Pending] = {}
        """Pending sessions by session id, oldest first."""
        self.pairing_failures = 0
        self.pairing_cooldown = pairing_cooldown
        self._monotonic = monotonic
        self._rng = rng
        self._pairings: list[_Pairing] = []
        self._paired: tuple[bytes, bytes] | None = None
        self._rate_limited_until: float | None = None

    def forget_sessions(self) -> None:
        self.current = None
        self.pending.clear()
        self._pairings.clear()

    # --- per-connection handshake ------------------------------------------------------------
    def on_hello(self, hello: dgm.Hello, raw: bytes) -> bytes:
        store = self.store
        ltk, gw_static = store.long_term_key, store.gateway_static
        if ltk is None or gw_static is None:
            self.refusals.add("not_commissioned")
            return _error(Status.NOT_COMMISSIONED)
        if hello.gateway_id != store.gateway_id:
            self.refusals.add("wrong_gateway")
            return _error(Status.WRONG_GATEWAY)
        version = negotiate(hello.version_min, hello.version_max)
        if version is None:
            self.refusals.add("version")
            return _error(Status.VERSION_UNSUPPORTED, bytes((VERSION_MIN, VERSION_MAX)))
        for pending in self.pending.values():
            if pending.hello_raw == raw:
                return pending.reply  # a retransmitted HELLO gets the same answer
        eph = self._rng(32)
        nonce = self._rng(16)
        session_id = int.from_bytes(self._rng(4), "little")
        eph_public = public_bytes(private_key(eph))
        try:
            ee = dh(eph, hello.ephemeral)
        except LockProtoError:
            self.refusals.add("weak_key")
            return _error(Status.BAD_REQUEST)
        ss = dh(store.static, gw_static)
        th = session_transcript(
            (hello.version_min, hello.version_max), version, hello.gateway_id,
            store.device_id, session_id, hello.nonce, nonce, hello.ephemeral, eph_public,
        )
        keys = session_keys(ltk, ee, ss, th)
        channel = SecureChannel(session_id, keys.lock_to_gateway, keys.gateway_to_lock)
        reply = dgm.encode(
            dgm.HelloReply(version, session_id, store.device_id, nonce, eph_public,
                           keys.confirm(th))
        )
        self.pending[session_id] = _Pending(Session(channel), raw, reply)
        while len(self.pending) > MAX_PENDING:
            del self.pending[next(iter(self.pending))]
            self.refusals.add("pending_evicted")
        return reply

    def open_data(self, dg: dgm.Data) -> tuple[Session, bytes] | bytes | None:
        """Open a DATA datagram: (session, plaintext), an ERROR reply, or ``None`` (silence)."""
        pending = self.pending.get(dg.session_id)
        if pending is not None:
            session = pending.session
        elif self.current is not None and self.current.channel.session_id == dg.session_id:
            session = self.current
        else:
            self.refusals.add("no_session")
            return _error(Status.NO_SESSION)
        try:
            plaintext = session.channel.open(dg)
        except LockProtoError as err:
            self.refusals.add(err.code)
            return None
        if pending is not None:  # proven: the gateway holds its keys
            self.current = session
            self.pending.clear()
        return session, plaintext

    # --- commissioning ------------------------------------------------------------------------
    def on_pair_start(self, start: dgm.PairStart, raw: bytes) -> bytes:
        if self.store.commissioned:
            self.refusals.add("not_in_pairing_mode")
            return _error(Status.NOT_IN_PAIRING_MODE)
        if self._rate_limited():
            self.refusals.add("rate_limited")
            return _error(Status.RATE_LIMITED)
        version = negotiate(start.version_min, start.version_max)
        if version is None:
            self.refusals.add("version")
            return _error(Status.VERSION_UNSUPPORTED, bytes((VERSION_MIN, VERSION_MAX)))
        for pairing in self._pairings:
            if pairing.start_raw == raw:
                return pairing.challenge
        try:
            ss = dh(self.store.static, start.static)
        except LockProtoError:
            self.refusals.add("weak_key")
            return _error(Status.PAIRING_FAILED)
        store = self.store
        nonce = self._rng(16)
        challenge = dgm.PairChallenge(version, store.device_id, nonce, store.static_public)
        th = pairing_transcript(
            (start.version_min, start.version_max), version, start.nonce, start.static,
            store.device_id, nonce, store.static_public,
        )
        keys = pairing_keys(store.pairing_secret, ss, th)
        self._pairings.append(_Pairing(start, raw, dgm.encode(challenge), th, keys))
        del self._pairings[:-MAX_PAIRING_ATTEMPTS]
        return self._pairings[-1].challenge

    def _rate_limited(self) -> bool:
        until = self._rate_limited_until
        if until is None:
            return False
        if self._monotonic() < until:
            return True
        self._rate_limited_until = None
        self.pairing_failures = 0
        return False

    def on_pair_proof(self, proof: dgm.PairProof) -> bytes:
        if self._paired is not None and same(self._paired[0], proof.proof):
            return self._paired[1]  # PAIR_DONE was lost; the gateway asks again
        if self.store.commissioned:
            self.refusals.add("not_in_pairing_mode")
            return _error(Status.NOT_IN_PAIRING_MODE)
        # every attempt in progress is checked: a proof for one that another PAIR_START
        # followed still verifies, and a wrong proof cancels no one's attempt
        for pairing in self._pairings:
            if same(pairing.keys.gateway_proof(pairing.transcript), proof.proof):
                break
        else:
            self.pairing_failures += 1
            self.refusals.add("pairing_proof")
            if self.pairing_failures >= MAX_PAIRING_FAILURES and self._rate_limited_until is None:
                self._rate_limited_until = self._monotonic() + self.pairing_cooldown
            return _error(Status.PAIRING_FAILED)
        keys = pairing.keys
        self.store.commit(pairing.start.static, keys.long_term_key)
        done = dgm.encode(dgm.PairDone(keys.lock_proof(pairing.transcript)))
        self._paired = (proof.proof, done)
        self.forget_sessions()
        return done

    def reset(self) -> None:
        self.forget_sessions()
        self._paired = None
        self.pairing_failures = 0
        self._rate_limited_until = None
