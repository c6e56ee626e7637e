"""The gateway's side of the session layer over any :class:`~.carrier.Carrier` (§6, §7.2).

:class:`ClientSession` runs the per-connection handshake, seals requests, waits for the reply
with the same ``req_id``, retransmits on silence (re-sealed, so with a new counter; the lock
answers a repeated ``req_id`` from its reply cache), and starts a new session when the lock
says it lost its own (reboot). Every datagram it refuses is counted in :attr:`stats`.

Plain ERROR datagrams are not authenticated: anyone on the bus or the radio can forge one. They
are hints (§4): the session keeps waiting for an authenticated answer (a HELLO_REPLY whose
``confirm`` verifies, a sealed reply) until the attempt's deadline, and acts on the hint only
if none came. LOCK, UNLOCK and ACCESS_ANSWER (:data:`~.messages.AT_MOST_ONCE`) are never sent
again in a new session: without an authenticated answer they end in
:class:`~drivers.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass

from drivers.errors import (
    DriverError,
    LockAuthError,
    LockBusyError,
    LockLinkError,
    OutcomeUnknownError,
    ProtocolError,
)
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.carrier import Carrier, exchange
from drivers.lockproto.channel import SecureChannel
from drivers.lockproto.crypto import (
    VERSION_MAX,
    VERSION_MIN,
    Rng,
    dh,
    private_key,
    public_bytes,
    same,
    session_keys,
    session_transcript,
)
from drivers.lockproto.errors import DecodeError, LockProtoError
from drivers.lockproto.keys import LinkKeys
from drivers.lockproto.messages import (
    AT_MOST_ONCE,
    MsgType,
    Reply,
    Request,
    decode_reply,
    encode_request,
)
from drivers.lockproto.stats import RefusalStats
from drivers.lockproto.status import Status

log = logging.getLogger(__name__)


class SessionState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"


DEFAULT_LOCK_REPLY = 0.25


@dataclass(frozen=True, slots=True)
class LinkTiming:
    lock_reply: float | None = None
    """The lock's processing budget; ``None`` takes what the lock announces (GET_INFO
    ``reply_ms``), and :data:`DEFAULT_LOCK_REPLY` until it has."""
    handshake_reply: float = 0.25
    margin: float = 0.03
    attempts: int = 4
    """Transmissions of one request before giving up (1 + 3 retransmissions)."""


@dataclass(slots=True)
class SessionStats(RefusalStats):
    requests: int = 0
    retransmissions: int = 0
    handshakes: int = 0
    stale_replies: int = 0


class SessionLostError(LockLinkError):
    """The lock no longer knows our session (it rebooted or dropped it): handshake again."""

    code = "session_lost"


class UnverifiedRefusalError(LockLinkError):
    """Only unauthenticated answers came: a plain ERROR (``status``), or a handshake reply that
    does not verify (``status`` is ``None``). The lock refused us, or someone else answered in
    its place; nothing proves which. Retried with the usual backoff, never the longest one, and
    never taken as a reason to commission the lock again."""

    code = "unverified_refusal"

    def __init__(self, message: str, *, status: Status | None, lock_id: str) -> None:
        super().__init__(message, lock_id=lock_id)
        self.status = status


_PERSISTS = {
    Status.NOT_COMMISSIONED: "the lock was reset: commission it again",
    Status.WRONG_GATEWAY: "the lock was reset and commissioned to another gateway",
    Status.VERSION_UNSUPPORTED: "the lock's firmware speaks another protocol version",
}


def refusal_hint(status: Status, lock_id: str) -> LockLinkError:
    """What a plain ERROR answering a HELLO or a DATA means, if no authenticated answer came."""
    if status is Status.NO_SESSION:
        return SessionLostError("lock has no such session", lock_id=lock_id)
    if status is Status.BUSY:
        return LockBusyError("lock refused: busy", lock_id=lock_id)
    persists = _PERSISTS.get(status, "see the lock's diagnostics")
    return UnverifiedRefusalError(
        f"lock answered {status.name.lower()} (unauthenticated: anyone on the link can forge "
        f"it; only if it persists: {persists})",
        status=status,
        lock_id=lock_id,
    )


_AUTH_STATUSES = {Status.NOT_COMMISSIONED, Status.WRONG_GATEWAY, Status.PAIRING_FAILED}


def link_status_error(status: Status, lock_id: str) -> Exception:
    """The exception for a plain ERROR datagram answering commissioning (attended: an
    installer runs it and sees the answer; the wait for a real answer has passed by then)."""
    if status is Status.NO_SESSION:
        return SessionLostError("lock has no such session", lock_id=lock_id)
    if status in _AUTH_STATUSES:
        return LockAuthError(f"lock refused the link: {status.name.lower()}", lock_id=lock_id)
    if status is Status.NOT_IN_PAIRING_MODE:
        return LockAuthError(
            "lock is not in pairing mode (if this persists it is commissioned already: "
            "reset it first to commission it again)",
            lock_id=lock_id,
        )
    if status in (Status.BUSY, Status.RATE_LIMITED):
        return LockBusyError(f"lock refused: {status.name.lower()}", lock_id=lock_id)
    return ProtocolError(f"lock refused the link: {status.name.lower()}", lock_id=lock_id)


class ClientSession:
    def __init__(
        self,
        carrier: Carrier,
        keys: LinkKeys,
        *,
        lock_id: str,
        rng: Rng = os.urandom,
        timing: LinkTiming | None = None,
    ) -> None:
        self.carrier = carrier
        self.keys = keys
        self.lock_id = lock_id
        self.timing = timing or LinkTiming()
        self.stats = SessionStats()
        self.reply_budget = (
            DEFAULT_LOCK_REPLY if self.timing.lock_reply is None else self.timing.lock_reply
        )
        self.max_reply = carrier.max_datagram
        self._rng = rng
        self._channel: SecureChannel | None = None
        self._generation = -1
        self._req_id = 0
        self._hint: LockLinkError | None = None
        self._sent = False

    @property
    def state(self) -> SessionState:
        if self._channel is None or self._generation != self.carrier.generation:
            return SessionState.CLOSED
        return SessionState.OPEN

    def drop(self) -> None:
        self._channel = None

    async def open(self) -> None:
        async with self.carrier.exclusive():
            if self.state is SessionState.CLOSED:
                await self._handshake()

    async def request(self, mtype: int, body: bytes = b"") -> Reply:
        """One request and its reply; retransmits, and re-handshakes once if the lock lost us
        (never for :data:`~.messages.AT_MOST_ONCE` requests once sent: those end in
        :class:`~drivers.errors.OutcomeUnknownError` without an authenticated answer)."""
        once = mtype in AT_MOST_ONCE
        async with self.carrier.exclusive():
            for attempt in (1, 2):
                if self.state is SessionState.CLOSED:
                    await self._handshake()
                self._sent = False
                try:
                    return await self._request(mtype, body, act_on_hints=not once)
                except SessionLostError:
                    self._channel = None
                    if attempt == 2:
                        raise
                except DriverError as err:
                    self._channel = None
                    if once and self._sent:
                        raise self._outcome_unknown(mtype, err) from err
                    raise
                except BaseException:
                    self._channel = None
                    raise
        raise AssertionError("unreachable")

    def _outcome_unknown(self, mtype: int, err: DriverError) -> OutcomeUnknownError:
        try:
            what = MsgType(mtype).name.lower()
        except ValueError:
            what = f"request 0x{mtype:02x}"
        heard = f"; heard only an unauthenticated {self._hint.code}" if self._hint else ""
        return OutcomeUnknownError(
            f"{what} was sent but no authenticated answer came ({err.code}{heard}): the lock "
            "may or may not have done it, and it is not sent again; check the lock",
            lock_id=self.lock_id,
        )

    # --- handshake --------------------------------------------------------------------------
    async def _handshake(self) -> None:
        self._channel = None
        self.stats.handshakes += 1
        eph = self._rng(32)
        hello = dgm.Hello(
            VERSION_MIN, VERSION_MAX, self.keys.gateway_id, self._rng(16),
            public_bytes(private_key(eph)),
        )
        payload = dgm.encode(hello)
        self.carrier.discard_pending()
        self._hint = None
        channel = await exchange(
            self.carrier,
            lambda: payload,
            lambda data: self._accept_hello_reply(data, hello, eph),
            per_attempt=self._timeout(len(payload), 96, self.timing.handshake_reply),
            attempts=self.timing.attempts,
            lock_id=self.lock_id,
            on_retransmit=self._count_retransmit,
            hint=self._take_hint,
        )
        self._channel = channel
        self._generation = self.carrier.generation
        self._req_id = 0
        log.debug("%s: session %08x open", self.lock_id, channel.session_id)

    def _accept_hello_reply(
        self, data: bytes, hello: dgm.Hello, eph: bytes
    ) -> SecureChannel | None:
        """Only a HELLO_REPLY that verifies ends the handshake; an ERROR or a reply that does
        not verify is a hint, acted on at the attempt's deadline if nothing better came."""
        dg = self._decode(data)
        if dg is None:
            return None
        if isinstance(dg, dgm.ErrorDg):
            if dg.status is Status.NO_SESSION:  # late answer to a request before this HELLO
                self.stats.stale_replies += 1
                return None
            self.stats.refuse("error_hint")
            self._hint = refusal_hint(dg.status, self.lock_id)
            return None
        if not isinstance(dg, dgm.HelloReply):
            self.stats.refuse("unexpected")
            return None
        try:
            return self.finish_handshake(hello, eph, dg)
        except (LockAuthError, ProtocolError) as err:
            self._hint = UnverifiedRefusalError(
                f"{err.message} (only if it persists: the lock holds other keys, reset and "
                "commission it again)",
                status=None,
                lock_id=self.lock_id,
            )
            return None

    def _take_hint(self) -> LockLinkError | None:
        hint, self._hint = self._hint, None
        return hint

    def finish_handshake(
        self, hello: dgm.Hello, eph: bytes, reply: dgm.HelloReply
    ) -> SecureChannel:
        """Check the lock's HELLO_REPLY and derive the channel (raises LockAuthError)."""
        keys = self.keys
        if reply.version not in range(VERSION_MIN, VERSION_MAX + 1):
            raise ProtocolError(f"lock chose version {reply.version}", lock_id=self.lock_id)
        if reply.device_id != keys.device_id:
            raise LockAuthError("a different lock answered at this address", lock_id=self.lock_id)
        try:
            ee = dh(eph, reply.ephemeral)
        except LockProtoError as err:
            raise LockAuthError("lock sent a weak ephemeral key", lock_id=self.lock_id) from err
        ss = dh(keys.gateway_static, keys.lock_static)
        th = session_transcript(
            (hello.version_min, hello.version_max), reply.version, keys.gateway_id,
            keys.device_id, reply.session_id, hello.nonce, reply.nonce, hello.ephemeral,
            reply.ephemeral,
        )
        skeys = session_keys(keys.long_term_key, ee, ss, th)
        if not same(skeys.confirm(th), reply.confirm):
            self.stats.refuse("forged")
            raise LockAuthError(
                "lock's handshake does not verify: it holds other keys (reset and "
                "commission it again)",
                lock_id=self.lock_id,
            )
        return SecureChannel(reply.session_id, skeys.gateway_to_lock, skeys.lock_to_gateway)

    # --- requests ---------------------------------------------------------------------------
    async def _request(self, mtype: int, body: bytes, *, act_on_hints: bool) -> Reply:
        """Send and wait, retransmitting in this session. ``act_on_hints``: an unauthenticated
        ERROR heard during an attempt ends the wait at that attempt's deadline (a request
        that may run again); otherwise it is only remembered for the error message."""
        channel = self._channel
        assert channel is not None
        self._req_id = self._req_id % 0xFFFF + 1
        req_id = self._req_id
        plaintext = encode_request(Request(mtype, req_id, body))
        self.stats.requests += 1
        sealed_len = len(plaintext) + dgm.DATA_HEADER_LEN + dgm.TAG_LEN
        self._hint = None

        def make() -> bytes:
            self._sent = True
            return dgm.encode(channel.seal(plaintext))

        return await exchange(
            self.carrier,
            make,
            lambda data: self.accept_reply(data, mtype, req_id),
            per_attempt=self._timeout(sealed_len, self.max_reply, self.reply_budget),
            attempts=self.timing.attempts,
            lock_id=self.lock_id,
            on_retransmit=self._count_retransmit,
            hint=self._take_hint if act_on_hints else None,
        )

    def accept_reply(self, data: bytes, mtype: int, req_id: int) -> Reply | None:
        """Parse one datagram from the lock while waiting for ``req_id``; ``None`` = refused
        (a plain ERROR is noted as a hint, :attr:`hint`, and refused too)."""
        dg = self._decode(data)
        if isinstance(dg, dgm.ErrorDg):
            self.stats.refuse("error_hint")
            self._hint = refusal_hint(dg.status, self.lock_id)
            return None
        if not isinstance(dg, dgm.Data) or self._channel is None:
            if dg is not None:
                self.stats.refuse("unexpected")
            return None
        try:
            plaintext = self._channel.open(dg)
            reply = decode_reply(plaintext)
        except LockProtoError as err:
            self.stats.refuse(err.code)
            return None
        if reply.req_id != req_id:
            self.stats.stale_replies += 1
            return None
        if reply.type != mtype:
            self.stats.refuse("mismatched")
            return None
        return reply

    @property
    def hint(self) -> LockLinkError | None:
        """The last unauthenticated refusal heard while waiting (not yet acted on)."""
        return self._hint

    def _decode(self, data: bytes) -> dgm.Datagram | None:
        try:
            return dgm.decode(data)
        except DecodeError:
            self.stats.refuse("malformed")
            return None

    def _timeout(self, request_len: int, reply_len: int, budget: float) -> float:
        c = self.carrier
        return c.wire_time(request_len) + c.wire_time(reply_len) + budget + self.timing.margin

    def _count_retransmit(self) -> None:
        self.stats.retransmissions += 1
        log.debug("%s: retransmitting", self.lock_id)

