"""The driver contract: what the gateway asks of every lock, whatever the link.

A driver turns these calls into bytes for one lock (over serial, BLE, or in-process for the
simulator). It declares what the lock can do in :class:`Capabilities`; the gateway plans with
that and never asks for more. All methods may raise :class:`drivers.errors.DriverError`
subclasses; they never swallow ``asyncio.CancelledError``.

Secrets (PIN digits, card numbers, key material) travel only in :attr:`Credential.secret` and
:attr:`AccessRequest.secret`; both are left out of ``repr`` so they cannot reach a log line by
accident.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict

from drivers.errors import DriverError, UnsupportedError


class CredentialKind(enum.StrEnum):
    CODE = "code"
    CARD = "card"
    MOBILE_KEY = "mobile_key"


class BoltState(enum.StrEnum):
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    JAMMED = "jammed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A validity window in UTC. ``None`` on either side means open on that side."""

    starts_at: datetime | None
    ends_at: datetime | None

    def contains(self, t: datetime) -> bool:
        if self.starts_at is not None and t < self.starts_at:
            return False
        return self.ends_at is None or t < self.ends_at


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential to put on a lock.

    ``credential_id`` is the cloud's access-method id. ``tag`` is an opaque 8-byte content tag
    (a keyed hash of kind, secret and window computed by the gateway): the lock stores it and
    returns it when listed, so a read-back check needs no secret. ``window`` is attached only
    for locks that enforce time windows themselves; otherwise it is ``None`` and the gateway
    removes the credential on time.
    """

    credential_id: str
    kind: CredentialKind
    secret: bytes = field(repr=False)
    tag: bytes
    window: TimeWindow | None = None


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """What a lock reports holding: never the secret."""

    credential_id: str
    kind: CredentialKind
    tag: bytes
    window: TimeWindow | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the lock can hold and do; the gateway plans with this."""

    slots: int
    max_batch: int
    kinds: frozenset[CredentialKind]
    enforces_time_windows: bool = False
    """The lock judges each credential's :class:`TimeWindow` itself (on its own clock); when
    ``False`` the gateway puts a credential on at ``starts_at`` and removes it at ``ends_at``."""
    code_min_length: int = 4
    code_max_length: int = 8
    code_alphabet: str = "0123456789"
    code_forbidden_prefixes: tuple[str, ...] = ()
    """Codes may not start with these (Nuki's keypad refuses codes starting with "12")."""
    has_keypad: bool = True
    has_card_reader: bool = False
    online_validation: bool = True
    """The lock asks the gateway (:class:`AccessRequest`) when its own memory cannot decide."""
    has_audit_log: bool = True
    """The lock keeps a log the gateway reads with :meth:`LockDriver.fetch_events`; when
    ``False`` the gateway never asks for it."""
    has_clock: bool = True
    """The lock has a clock the gateway sets with :meth:`LockDriver.set_time` (locks that
    enforce windows themselves need one)."""
    remote_actuation: bool = True
    """The lock can be locked and unlocked on command (:meth:`LockDriver.lock`, ``unlock``)."""
    has_slots: bool = True
    """The lock stores credentials in a fixed number of ``slots``; ``False``: no slot limit
    the gateway must plan around (``slots`` is then only a sanity bound)."""
    written_only_by_gateway: bool = False
    """The lock's credentials change only through this driver's authenticated writes (no
    keypad programming, no vendor app; a reset unpairs it): nothing can drift behind the
    gateway's back but a failing memory, so the reconciler reads them back only every
    ``reconcile.verify_s`` and after a reconnection, not every ``event_poll_s``."""
    stores_credentials: bool = True
    """``False``: the lock holds no credentials at all (a card or keypad reader on a control
    panel); every one it reads goes to the gateway (:attr:`DriverContext.decide`) and the
    reconciler has nothing to put on it."""

    def code_problem(self, code: str) -> str | None:
        """Why ``code`` breaks this lock's code rules, or ``None`` when it is fine."""
        if not self.code_min_length <= len(code) <= self.code_max_length:
            return f"length {len(code)} outside {self.code_min_length}..{self.code_max_length}"
        if any(ch not in self.code_alphabet for ch in code):
            return "character outside the lock's code alphabet"
        for prefix in self.code_forbidden_prefixes:
            if code.startswith(prefix):
                return f'starts with "{prefix}"'
        return None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Outcome of a put or delete batch: the ids that failed, with why. Absent means done."""

    failures: Mapping[str, DriverError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class LockStatus:
    bolt: BoltState
    battery_percent: int | None = None
    tamper: bool = False
    lock_time: datetime | None = None
    firmware: str | None = None


class EventKind(enum.StrEnum):
    ACCESS_ALLOWED = "access_allowed"
    ACCESS_DENIED = "access_denied"
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    TAMPER = "tamper"
    REBOOTED = "rebooted"
    BATTERY_LOW = "battery_low"
    TAMPER_CLEARED = "tamper_cleared"
    POWER_FAILURE = "power_failure"
    POWER_RESTORED = "power_restored"
    ONLINE = "online"
    """The lock (or reader) answers its gateway again."""
    OFFLINE = "offline"
    KEY_REJECTED = "key_rejected"
    """The lock answered but its link key is not the one the gateway holds."""
    EVENTS_LOST = "events_lost"
    """A gap in the lock's record: entries the lock produced while the link was down are gone
    (Z-Wave locks keep no log to resume from). ``reason`` says which interval."""


@dataclass(frozen=True, slots=True)
class LockEvent:
    """One entry of the lock's audit log. ``seq`` increases by one per entry, per lock."""

    seq: int
    occurred_at: datetime
    kind: EventKind
    credential_kind: CredentialKind | None = None
    credential_id: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    """``"lock"`` when the lock decided from its own memory, ``"gateway"`` when it asked."""


@dataclass(frozen=True, slots=True)
class EventPage:
    events: Sequence[LockEvent]
    next_seq: int
    """Pass this as ``after_seq`` next time. Equal to the input when nothing new."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A lock asks the gateway to decide a credential its memory does not hold."""

    lock_id: str
    kind: CredentialKind
    secret: bytes = field(repr=False)
    at: datetime | None = None
    """The lock's own idea of the time, for the record; the gateway decides on its own clock."""
    proof: bytes | None = field(default=None, repr=False)
    """For mobile keys: the phone's signed answer to the lock's challenge."""


@dataclass(frozen=True, slots=True)
class AccessAnswer:
    allow: bool
    reason: str
    credential_id: str | None = None


class KeyStore(Protocol):
    """Where a driver keeps long-term link secrets (commissioning keys), encrypted at rest."""

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, value: bytes) -> None: ...

    def delete(self, name: str) -> None: ...


Decider = Callable[[AccessRequest], Awaitable[AccessAnswer]]


class WaitClock(Protocol):
    """The gateway's clock, for drivers' own timers (idle disconnect, keep-alive, backoff).

    Tests hand drivers a fake clock and move time instead of sleeping; timeouts that measure
    the air or the wire (one request) stay on the event loop's own time.
    """

    def now(self) -> datetime:
        """The current wall time, aware UTC."""
        ...

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        """Return when ``deadline`` has passed or ``wake`` is set, whichever comes first.

        ``None`` waits for ``wake`` only. Does not clear ``wake``.
        """
        ...


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """Something on a lock's link that an attacker (or a serious misconfiguration) explains,
    e.g. a device that advertises as the lock and is not (``kind`` ``rogue_device``). For the
    operator: ``detail`` never holds a secret."""

    lock_id: str
    kind: str
    detail: str
    address: str | None = None


async def _deny_all(request: AccessRequest) -> AccessAnswer:
    return AccessAnswer(allow=False, reason="no_gateway_decider")


def _no_hint() -> None:
    return None


def _no_alert(alert: SecurityAlert) -> None:
    return None


@dataclass(slots=True)
class DriverContext:
    """What the gateway hands a driver: its clock, a way to ask for decisions, a key store."""

    now: Callable[[], datetime]
    keystore: KeyStore
    decide: Decider = _deny_all
    events_waiting: Callable[[], None] = _no_hint
    """Call when the lock signalled new audit-log entries, so the gateway fetches them soon."""
    clock: WaitClock | None = None
    """The gateway's clock for the driver's timers; ``None``: the system clock."""
    alert: Callable[[SecurityAlert], None] = _no_alert
    """Call when the link shows signs of an attack (the gateway records and publishes it)."""


class DriverOptions(BaseModel):
    """Base of every driver's typed options. Subclasses set ``type: Literal["name"]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str


class LockDriver(ABC):
    """One lock, as the gateway sees it. Use as an async context manager for its lifetime.

    Only four members are essential and abstract: :meth:`capabilities`,
    :meth:`list_credentials`, :meth:`put_credentials` and :meth:`delete_credentials`. The rest
    have defaults that fit a lock without that feature: a link that is always there
    (``connected`` is ``True``, :meth:`connect` and :meth:`disconnect` do nothing), no remote
    actuation (:meth:`lock` and :meth:`unlock` raise :class:`~drivers.errors.UnsupportedError`),
    a bolt state nobody knows (:meth:`status`), no audit log (:meth:`fetch_events` returns an
    empty page, :meth:`ack_events` does nothing, :meth:`log_origin` and :meth:`log_head` know
    nothing), no clock (:meth:`set_time` raises
    ``UnsupportedError``) and no commissioning. Declare what the lock has in
    :class:`Capabilities`; the gateway asks only for that.

    Operations on one driver are issued one at a time by the gateway (its lock handle owns
    that); a driver whose transport is shared (an RS-485 bus, one BLE adapter) serialises
    across locks itself.
    """

    type_name: ClassVar[str]
    options_model: ClassVar[type[DriverOptions]]

    def __init__(self, lock_id: str, options: DriverOptions, ctx: DriverContext) -> None:
        self.lock_id = lock_id
        self.options = options
        self.ctx = ctx

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work the driver needs (none by default)."""

    async def close(self) -> None:
        """Stop background work and drop the link."""
        await self.disconnect()

    # --- the link (optional: the default is a lock that is always reachable) -----------------
    @property
    def connected(self) -> bool:
        """Whether operations can run now without :meth:`connect` first."""
        return True

    @property
    def awake(self) -> bool:
        """Whether talking to the lock now costs it nothing extra: its radio link is up.

        A lock that sleeps between operations (a battery BLE lock, connected on demand) is
        ``connected`` (in service) but not ``awake`` while its link is down; the gateway then
        reads it only when it must, never for an unsigned read or a periodic status poll."""
        return self.connected

    async def connect(self) -> None:  # noqa: B027 - optional
        """Open and authenticate the link. Idempotent."""

    async def disconnect(self) -> None:  # noqa: B027 - optional
        """Close the link. Idempotent; never raises for an already closed link."""

    # --- essential ---------------------------------------------------------------------------
    @abstractmethod
    async def capabilities(self) -> Capabilities: ...

    @abstractmethod
    async def list_credentials(self) -> list[StoredCredential]: ...

    @abstractmethod
    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        """Add or replace (same ``credential_id``) up to ``max_batch`` credentials."""

    @abstractmethod
    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        """Remove credentials; an id the lock does not hold counts as done."""

    # --- optional ----------------------------------------------------------------------------
    async def lock(self) -> None:
        """Throw the bolt (``Capabilities.remote_actuation``)."""
        raise UnsupportedError(
            f"driver {self.type_name!r} cannot lock remotely", lock_id=self.lock_id
        )

    async def unlock(self, hold_seconds: float | None = None) -> None:
        """Withdraw the bolt, for ``hold_seconds`` or until locked (``remote_actuation``)."""
        raise UnsupportedError(
            f"driver {self.type_name!r} cannot unlock remotely", lock_id=self.lock_id
        )

    async def status(self) -> LockStatus:
        """Bolt, battery, tamper; the default knows nothing."""
        return LockStatus(BoltState.UNKNOWN)

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        """Audit-log entries after ``after_seq`` (``Capabilities.has_audit_log``)."""
        return EventPage((), after_seq)

    async def ack_events(self, up_to_seq: int) -> None:  # noqa: B027 - optional
        """Tell the lock it may free log entries up to and including ``up_to_seq``."""

    async def log_origin(self) -> str | None:
        """Which log the ``seq`` of :meth:`fetch_events` count in: a short text that stays the
        same for as long as the lock keeps counting in the same log, and changes whenever the
        log could start again at 1 (another device under this lock id, a factory reset, a new
        pairing that may follow one). The gateway keeps its cursor per origin: a new origin
        starts a new log (its cursor at 0, event ids of a new epoch), the same origin goes on
        from the cursor.

        Take it only from what the authenticated link proved (the identity key or device id
        learnt at commissioning and checked in every session), never from an advertisement
        or anything else a stranger on the bus or the radio could send. Called inside a
        session each time the gateway reads the log, so answer from memory, without I/O.
        ``None`` (the default): the driver cannot tell, and the gateway takes the log for
        the same one as long as the lock stays configured."""
        return None

    async def log_head(self) -> int | None:
        """The newest ``seq`` the lock's log holds now, read over the authenticated link (or
        from the driver's own journal); ``None`` (the default) when it cannot tell.

        Asked only when a read after the gateway's cursor came back empty: a head below the
        cursor means the log went back (the lock lost it) although its origin is the same,
        and the gateway then reads it as a new log instead of waiting for it to pass the
        cursor. Never answer from a value that may be older than the gateway's last read."""
        return None

    async def set_time(self, t: datetime) -> None:
        """Set the lock's clock (``Capabilities.has_clock``)."""
        raise UnsupportedError(f"driver {self.type_name!r} has no clock", lock_id=self.lock_id)

    async def commission(self, pairing_secret: str) -> None:
        """Bind this gateway to the lock with its out-of-band pairing secret.

        Called on a lock that may refuse any session yet: the gateway does not
        :meth:`connect` first. Leave the link connected when done."""
        raise UnsupportedError(
            f"driver {self.type_name!r} has no commissioning", lock_id=self.lock_id
        )


def ensure_driver_error(err: BaseException) -> DriverError:
    """Return ``err`` when it is a :class:`DriverError`, else wrap it (never CancelledError)."""
    if isinstance(err, DriverError):
        return err
    return DriverError(f"{type(err).__name__}: {err}")
