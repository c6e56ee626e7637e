"""Pairing and per-connection handshake, lock side (docs/protocol.md §5, §6).

The lock keeps at most two sessions: the *current* one, and a *pending* one that a HELLO just
created. The pending one replaces the current one only when a DATA datagram sealed with its
keys arrives (this proves the gateway derived the same keys), so a forged HELLO cannot break
the session in use. Each session remembers the last ``req_id`` it answered and the reply, and
answers a retransmitted request from there without executing it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.lockproto import datagrams as dgm
from drivers.lockproto.channel import SecureChannel
from drivers.lockproto.crypto import (
    VERSION_MAX,
    VERSION_MIN,
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


@dataclass(slots=True)
class Session:
    channel: SecureChannel
    last_req_id: int | None = None
    last_reply: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Pairing:
    start: dgm.PairStart
    start_raw: bytes
    challenge: bytes
    transcript: bytes


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
    def __init__(self, store: LinkStore, *, rng: Rng, refusals: Refusals) -> None:
        self.store = store
        self.refusals = refusals
        self.current: Session | None = None
        self.pending: Session | None = None
        self.pairing_failures = 0
        self._rng = rng
        self._last_hello: tuple[bytes, bytes] | None = None
        self._pairing: _Pairing | None = None
        self._paired: tuple[bytes, bytes] | None = None

    def forget_sessions(self) -> None:
        self.current = self.pending = None
        self._last_hello = None
        self._pairing = None

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
        if self._last_hello is not None and self._last_hello[0] == raw:
            return self._last_hello[1]  # a retransmitted HELLO gets the same answer
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
        self.pending = Session(channel)
        reply = dgm.encode(
            dgm.HelloReply(version, session_id, store.device_id, nonce, eph_public,
                           keys.confirm(th))
        )
        self._last_hello = (raw, reply)
        return reply

    def open_data(self, dg: dgm.Data) -> tuple[Session, bytes] | bytes | None:
        """Open a DATA datagram: (session, plaintext), an ERROR reply, or ``None`` (silence)."""
        for session in (self.current, self.pending):
            if session is not None and session.channel.session_id == dg.session_id:
                break
        else:
            self.refusals.add("no_session")
            return _error(Status.NO_SESSION)
        try:
            plaintext = session.channel.open(dg)
        except LockProtoError as err:
            self.refusals.add(err.code)
            return None
        if session is self.pending:
            self.current, self.pending = session, None
            self._last_hello = None
        return session, plaintext

    # --- commissioning ------------------------------------------------------------------------
    def on_pair_start(self, start: dgm.PairStart, raw: bytes) -> bytes:
        if self.store.commissioned:
            self.refusals.add("not_in_pairing_mode")
            return _error(Status.NOT_IN_PAIRING_MODE)
        if self.pairing_failures >= MAX_PAIRING_FAILURES:
            self.refusals.add("rate_limited")
            return _error(Status.RATE_LIMITED)
        version = negotiate(start.version_min, start.version_max)
        if version is None:
            self.refusals.add("version")
            return _error(Status.VERSION_UNSUPPORTED, bytes((VERSION_MIN, VERSION_MAX)))
        if self._pairing is not None and self._pairing.start_raw == raw:
            return self._pairing.challenge
        store = self.store
        nonce = self._rng(16)
        challenge = dgm.PairChallenge(version, store.device_id, nonce, store.static_public)
        th = pairing_transcript(
            (start.version_min, start.version_max), version, start.nonce, start.static,
            store.device_id, nonce, store.static_public,
        )
        self._pairing = _Pairing(start, raw, dgm.encode(challenge), th)
        return self._pairing.challenge

    def on_pair_proof(self, proof: dgm.PairProof) -> bytes:
        if self._paired is not None and same(self._paired[0], proof.proof):
            return self._paired[1]  # PAIR_DONE was lost; the gateway asks again
        if self.store.commissioned:
            self.refusals.add("not_in_pairing_mode")
            return _error(Status.NOT_IN_PAIRING_MODE)
        pairing = self._pairing
        if pairing is None:
            self.refusals.add("pairing_proof")
            return _error(Status.PAIRING_FAILED)
        try:
            ss = dh(self.store.static, pairing.start.static)
        except LockProtoError:
            self._pairing = None
            self.refusals.add("weak_key")
            return _error(Status.PAIRING_FAILED)
        keys = pairing_keys(self.store.pairing_secret, ss, pairing.transcript)
        if not same(keys.gateway_proof(pairing.transcript), proof.proof):
            self.pairing_failures += 1
            self.refusals.add("pairing_proof")
            self._pairing = None
            return _error(Status.PAIRING_FAILED)
        self.store.commit(pairing.start.static, keys.long_term_key)
        done = dgm.encode(dgm.PairDone(keys.lock_proof(pairing.transcript)))
        self._paired = (proof.proof, done)
        self._pairing = None
        self.forget_sessions()
        return done

    def reset(self) -> None:
        self.forget_sessions()
        self._paired = None
        self.pairing_failures = 0
