"""The Nuki driver: :class:`drivers.base.LockDriver` for Nuki smart locks with a keypad.

Composition, top-down: :class:`NukiDriver` → :class:`~drivers.nuki.client.NukiClient`
(operations) → :class:`~drivers.nuki.session.NukiSession` (sealing, challenges, the security
PIN) → :class:`~drivers.nuki.link.NukiCarrier` / :class:`~drivers.nuki.link.NukiLink` (GATT,
reassembly of indications) → the BLE driver's connection policy
(:class:`drivers.ble.connection.LockConnection`: connect on demand, one operation at a time,
idle disconnect, reconnect backoff) and adapter (:mod:`drivers.ble.adapter`: the one scanner,
the connection limit) shared with every BLE lock of the adapter.

Commissioning is Nuki's pairing: the lock in pairing mode (its button held 5 s), the gateway
pairs as a bridge, keeps its key pair and authorization id in ``ctx.keystore`` and the
security PIN beside them (the "pairing secret" handed to :meth:`commission`), and checks the
PIN with the lock before it counts as commissioned.

Keypad codes carry their window to the lock, which enforces it itself; the lock's log (keypad
entries name the code id) is read behind the gateway's cursor. Nuki's code rules (six digits
1-9, not starting with "12", unique) are declared in :meth:`capabilities`, so the planner
refuses a rule-breaking code per credential before any radio traffic, and
:meth:`put_credentials` checks them again before it touches the radio.
"""

from __future__ import annotations

import logging
import os
import random as _random
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from bleak.backends.scanner import AdvertisementData

from drivers.backoff import Backoff
from drivers.base import (
    BatchResult,
    BoltState,
    Capabilities,
    Credential,
    CredentialKind,
    DriverContext,
    DriverOptions,
    EventPage,
    LockDriver,
    LockEvent,
    LockStatus,
    StoredCredential,
    WaitClock,
)
from drivers.ble.adapter import AdapterRegistry, BleAdapter, default_adapter_registry
from drivers.ble.connection import LockConnection
from drivers.ble.profile import AdvertFlag
from drivers.ble.scanner import Sighting
from drivers.clock import SystemClock
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    DriverConfigError,
    DriverError,
    DuplicateCodeError,
    LockAuthError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    OutcomeUnknownError,
    ProtocolError,
    UnsupportedError,
)
from drivers.nuki import codes, profile
from drivers.nuki.client import NukiClient
from drivers.nuki.errors import driver_error
from drivers.nuki.events import lock_event
from drivers.nuki.link import NukiCarrier, NukiLink
from drivers.nuki.messages import (
    CodeUpdate,
    DoorSensor,
    KeypadEntry,
    KeyturnerStates,
    LockAction,
    LockState,
    LogEntry,
    NewCode,
)
from drivers.nuki.options import NukiOptions
from drivers.nuki.pairing import pair
from drivers.nuki.session import (
    ActionUnconfirmed,
    NukiError,
    NukiKeys,
    NukiReplyError,
    NukiSession,
)
from drivers.nuki.wire import ErrorCode
from drivers.secrets import SecretError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_REPLY_TIMEOUT = 5.0
CODE_RULES = Capabilities(
    slots=200,
    max_batch=10,
    kinds=frozenset({CredentialKind.CODE}),
    enforces_time_windows=True,
    code_min_length=6,
    code_max_length=6,
    code_alphabet="123456789",
    code_forbidden_prefixes=("12",),
    has_keypad=True,
    online_validation=False,
)

_BOLT: dict[int, BoltState] = {
    LockState.LOCKED: BoltState.LOCKED,
    LockState.LOCKING: BoltState.LOCKED,
    LockState.UNLOCKED: BoltState.UNLOCKED,
    LockState.UNLOCKING: BoltState.UNLOCKED,
    LockState.UNLATCHED: BoltState.UNLOCKED,
    LockState.UNLATCHING: BoltState.UNLOCKED,
    LockState.UNLOCKED_LOCK_N_GO: BoltState.UNLOCKED,
    LockState.MOTOR_BLOCKED: BoltState.JAMMED,
}


def keys_name(lock_id: str) -> str:
    return f"nuki/{lock_id}/keys"


def pin_name(lock_id: str) -> str:
    return f"nuki/{lock_id}/pin"


def parse_pin(text: str, *, lock_id: str) -> int:
    """The security PIN as the operator typed it (digits, 0..65535 for Smart Lock 1-4)."""
    digits = text.strip()
    if not digits.isdigit() or not 0 <= int(digits) <= 0xFFFF:
        raise LockAuthError("the security PIN must be a number from 0 to 65535", lock_id=lock_id)
    return int(digits)


class NukiDriver(LockDriver):
    type_name = "nuki"
    options_model = NukiOptions

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        adapters: AdapterRegistry | None = None,
        clock: WaitClock | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        if not isinstance(options, NukiOptions):
            raise DriverConfigError("the Nuki driver needs NukiOptions", lock_id=lock_id)
        self.nuki_options = options
        self._adapters = adapters
        self._adapter: BleAdapter | None = None
        self._rng = rng
        self._reply_timeout = options.reply_timeout or DEFAULT_REPLY_TIMEOUT
        self.carrier = NukiCarrier(lock_id)
        self.conn = LockConnection(
            lock_id,
            options,
            None,
            clock=clock or ctx.clock or SystemClock(ctx.now),
            policy=Backoff(options.reconnect_min, options.reconnect_max, random=random),
            keepalive=self._keepalive,
            attention=_nothing,
            on_advert=self._advertised,
            on_status=_no_flags,
            opener=self._open_link,
        )
        self.directory = codes.Directory(ctx.keystore, lock_id)
        self._client: NukiClient | None = None
        self._in_service = False
        self._unrecognise: Callable[[], None] | None = None
        self._entries: tuple[NukiLink, list[KeypadEntry]] | None = None
        """The codes as last read or written on this link: a put or delete right after the
        gateway's read (one reconciler pass) does not read them again."""
        self.door: DoorSensor | None = None
        """The door sensor's state at the last :meth:`status` (the contract has no field)."""

    # --- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._adapter is not None:
            return
        opts = self.nuki_options
        registry = self._adapters or default_adapter_registry()
        self._adapter = await registry.acquire(
            opts.adapter, max_connections=opts.max_connections, backend=opts.backend
        )
        self._unrecognise = await self._adapter.scanner.recognise(_is_nuki)
        self.conn.start(self._adapter)

    async def close(self) -> None:
        self._in_service = False
        await self.conn.close()
        if self._unrecognise is not None:
            self._unrecognise()
            self._unrecognise = None
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            await (self._adapters or default_adapter_registry()).release(adapter)

    async def _open_link(
        self, adapter: BleAdapter, sighting: Sighting, on_lost: Callable[[], None]
    ) -> NukiLink:
        opts = self.nuki_options
        link = await NukiLink.open(
            adapter,
            sighting,
            on_lost,
            lock_id=self.lock_id,
            connect_timeout=opts.connect_timeout,
            gatt_timeout=opts.gatt_timeout,
        )
        self.carrier.attach(link)
        return link

    def _advertised(self, sighting: Sighting) -> None:
        beacon = _beacon(sighting)
        if beacon is not None and beacon.changed:
            self.ctx.events_waiting()

    async def _keepalive(self) -> None:
        return None  # a Nuki lock drops a silent link itself; the idle timer drops it first

    # --- keys --------------------------------------------------------------------------------
    def _configured_pin(self) -> int | None:
        """The PIN from the ``security_pin`` option (file or credential), if set."""
        ref = self.nuki_options.security_pin
        if ref is None:
            return None
        try:
            text = ref.read_text()
        except (SecretError, OSError, UnicodeDecodeError) as err:
            raise DriverConfigError(f"security_pin: {err}", lock_id=self.lock_id) from err
        return parse_pin(text, lock_id=self.lock_id)

    def _keys(self) -> tuple[NukiKeys, int]:
        raw = self.ctx.keystore.get(keys_name(self.lock_id))
        stored_pin = self.ctx.keystore.get(pin_name(self.lock_id))
        if raw is None or stored_pin is None:
            raise LockAuthError("not commissioned: pair the lock first", lock_id=self.lock_id)
        try:
            keys, pin = NukiKeys.from_bytes(raw), int(struct.unpack("<H", stored_pin)[0])
        except (ValueError, struct.error) as err:
            raise LockAuthError("stored Nuki keys are damaged", lock_id=self.lock_id) from err
        configured = self._configured_pin()
        return keys, pin if configured is None else configured

    async def _ready(self) -> NukiClient:
        await self.start()
        keys, pin = self._keys()
        session = self._client.session if self._client else None
        if session is None or session.keys != keys or session.pin != pin:
            self._client = NukiClient(
                NukiSession(
                    self.carrier, keys, pin=pin, reply_timeout=self._reply_timeout, rng=self._rng
                )
            )
        assert self._client is not None
        return self._client

    async def _run(self, op: Callable[[NukiClient], Awaitable[T]]) -> T:
        """One operation on a link brought up for it, tried again on a fresh link when the
        link drops under it (every operation here is idempotent)."""
        client = await self._ready()
        attempts = self.nuki_options.op_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self.conn.operation():
                    result = await self._wrap(op(client))
            except (LockAuthError, ProtocolError):
                self._in_service = False
                raise
            except LockLinkError as err:
                if attempt < attempts:
                    log.debug("%s: %s (%s); trying again", self.lock_id, err.message, err.code)
                    continue
                if isinstance(err, LockOfflineError | LockTimeoutError):
                    self._in_service = False
                raise
            return result
        raise AssertionError("unreachable")

    async def _wrap(self, step: Awaitable[T]) -> T:
        try:
            return await step
        except NukiError as err:
            raise self._error(err) from err
        except NukiReplyError as err:
            raise ProtocolError(str(err), lock_id=self.lock_id) from err
        except ActionUnconfirmed as err:
            raise OutcomeUnknownError(
                "the lock action was sent but not confirmed: check the lock before trying again",
                lock_id=self.lock_id,
            ) from err
        except TimeoutError as err:
            raise LockTimeoutError("no answer from the lock in time", lock_id=self.lock_id) from err

    def _error(self, err: NukiError, credential_id: str | None = None) -> DriverError:
        return driver_error(err, self.lock_id, credential_id)

    # --- link --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._in_service

    @property
    def link_up(self) -> bool:
        return self.conn.link_up

    async def connect(self) -> None:
        await self._run(lambda c: c.states())
        self._in_service = True

    async def disconnect(self) -> None:
        self._in_service = False
        await self.conn.disconnect()

    async def commission(self, pairing_secret: str) -> None:
        """Pair with the lock (in pairing mode) and keep the security PIN given here.

        Already paired: only the PIN is checked and kept (a wrong PIN is corrected without
        pressing the button again). A lock that forgot the gateway (reset, or the gateway
        removed in the Nuki app) is paired anew."""
        pin = parse_pin(pairing_secret, lock_id=self.lock_id)
        configured = self._configured_pin()
        if configured is not None and configured != pin:
            raise LockAuthError(
                "the PIN given differs from the lock's security_pin option: give the same",
                lock_id=self.lock_id,
            )
        await self.start()
        store = self.ctx.keystore
        if store.get(keys_name(self.lock_id)) is not None:
            try:
                await self._keep_pin(pin)
            except LockAuthError as err:
                if not _forgotten(err):
                    raise
            else:
                return
            log.info("%s: the lock forgot this gateway: pairing again", self.lock_id)
            store.delete(keys_name(self.lock_id))
        keys = await self._pair()
        store.put(keys_name(self.lock_id), keys.to_bytes())
        log.info("%s: paired (authorization %d)", self.lock_id, keys.auth_id)
        await self._keep_pin(pin)

    async def _pair(self) -> NukiKeys:
        opts = self.nuki_options
        try:
            async with self.conn.operation():
                return await self._wrap(
                    pair(
                        self.carrier,
                        app_id=opts.app_id,
                        name=opts.name,
                        within=self._reply_timeout,
                        rng=self._rng,
                    )
                )
        except ProtocolError as err:
            cause = err.__cause__
            if isinstance(cause, NukiError) and cause.code == ErrorCode.P_NOT_PAIRING:
                raise LockAuthError(
                    "the lock is not in pairing mode: hold its button for 5 seconds, "
                    "then commission again",
                    lock_id=self.lock_id,
                ) from err
            raise

    async def _keep_pin(self, pin: int) -> None:
        """Check the PIN with the lock (Verify Security PIN); keep it only if right."""
        store = self.ctx.keystore
        store.put(pin_name(self.lock_id), struct.pack("<H", pin))
        self._client = None
        try:
            await self._run(lambda c: c.verify_pin())
        except LockAuthError:
            store.delete(pin_name(self.lock_id))
            raise
        self._in_service = True

    # --- what the lock can do ----------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        return replace(CODE_RULES, slots=self.nuki_options.max_codes)

    def _rule_problem(self, credential: Credential) -> DriverError | None:
        if credential.kind is not CredentialKind.CODE:
            return UnsupportedError(
                "a Nuki keypad takes PIN codes only",
                lock_id=self.lock_id,
                credential_id=credential.credential_id,
            )
        problem = CODE_RULES.code_problem(credential.secret.decode("utf-8", "replace"))
        if problem is not None:
            return CodeRuleError(
                f"Nuki's code rules: {problem}",
                lock_id=self.lock_id,
                credential_id=credential.credential_id,
            )
        return None

    # --- credentials -------------------------------------------------------------------------
    async def list_credentials(self) -> list[StoredCredential]:
        """Always read from the lock (the gateway checks its writes with this)."""
        entries = await self._run(lambda c: self._codes(c, fresh=True))
        return [self._stored(e) for e in entries]

    async def _codes(self, client: NukiClient, *, fresh: bool = False) -> list[KeypadEntry]:
        link = self.carrier.link
        cached = self._entries
        if not fresh and cached is not None and cached[0] is link and link.is_connected:
            return list(cached[1])
        self._entries = None
        entries = await client.list_codes()
        if link is not None:
            self._entries = (link, list(entries))
        return entries

    def _remember(self, entries: dict[int, KeypadEntry]) -> None:
        """After writes that succeeded on this link: the codes as the lock now holds them."""
        if self._entries is not None:
            self._entries = (self._entries[0], [entries[i] for i in sorted(entries)])

    def _stored(self, entry: KeypadEntry) -> StoredCredential:
        credential_id = self.directory.credential_of(entry)
        if credential_id is not None:
            self.directory.placed(credential_id, entry.code_id)
        return codes.stored(entry, credential_id)

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        failures: dict[str, DriverError] = {}
        todo: list[Credential] = []
        for credential in batch:  # before any radio traffic
            problem = self._rule_problem(credential)
            if problem is not None:
                failures[credential.credential_id] = problem
            else:
                todo.append(credential)
        if todo:
            failures.update(await self._run(lambda c: self._put(c, todo)))
        return BatchResult(failures)

    async def _put(self, client: NukiClient, batch: Sequence[Credential]) -> dict[str, DriverError]:
        try:
            return await self._put_codes(client, batch)
        except BaseException:
            self._entries = None
            raise

    async def _put_codes(
        self, client: NukiClient, batch: Sequence[Credential]
    ) -> dict[str, DriverError]:
        failures: dict[str, DriverError] = {}
        entries = await self._codes(client)
        held = {e.code_id: e for e in entries}
        mine = {self.directory.credential_of(e): e for e in entries}
        by_digits = {e.code: e for e in entries}
        for credential in batch:
            cid = credential.credential_id
            digits = codes.code_digits(credential)
            name = codes.code_name(credential)
            window = codes.to_code_window(credential.window)
            existing = mine.get(cid)
            holder = by_digits.get(digits)
            if holder is not None and holder is not existing:
                failures[cid] = DuplicateCodeError(
                    "another code on the lock has these digits",
                    lock_id=self.lock_id,
                    credential_id=cid,
                )
                continue
            try:
                if existing is None:
                    self.directory.intend(cid)
                    code_id = await client.add_code(NewCode(digits, name, window))
                    self.directory.placed(cid, code_id)
                    held[code_id] = KeypadEntry(code_id, digits, name, True, None, None, 0, window)
                elif existing.name != name or existing.code != digits or existing.window != window:
                    await client.update_code(
                        CodeUpdate(existing.code_id, digits, name, True, window)
                    )
                    held[existing.code_id] = replace(
                        existing, code=digits, name=name, enabled=True, window=window
                    )
            except NukiError as err:
                mapped = self._error(err, cid)
                if not isinstance(mapped, DuplicateCodeError | CodeRuleError | CapacityError):
                    raise
                failures[cid] = mapped
        self._remember(held)
        return failures

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        await self._run(lambda c: self._delete(c, credential_ids))
        for cid in credential_ids:
            self.directory.forget(cid)
        return BatchResult()

    async def _delete(self, client: NukiClient, credential_ids: Sequence[str]) -> None:
        wanted = set(credential_ids)
        try:
            entries = await self._codes(client)
            held = {e.code_id: e for e in entries}
            for entry in entries:
                cid = self.directory.credential_of(entry)
                foreign = f"{codes.FOREIGN}{entry.code_id}"
                if cid in wanted or (cid is None and foreign in wanted):
                    await client.remove_code(entry.code_id)
                    del held[entry.code_id]
        except BaseException:
            self._entries = None
            raise
        self._remember(held)

    # --- the bolt ----------------------------------------------------------------------------
    async def lock(self) -> None:
        await self._run(lambda c: c.lock_action(LockAction.LOCK))

    async def unlock(self, hold_seconds: float | None = None) -> None:
        action = (
            LockAction.UNLATCH
            if self.nuki_options.unlock_action == "unlatch"
            else LockAction.UNLOCK
        )
        await self._run(lambda c: c.lock_action(action))

    async def unlatch(self) -> None:
        """Pull the latch (the door opens), whatever ``unlock_action`` says."""
        await self._run(lambda c: c.lock_action(LockAction.UNLATCH))

    async def status(self) -> LockStatus:
        states: KeyturnerStates = await self._run(lambda c: c.states())
        try:
            self.door = DoorSensor(states.door_sensor)
        except ValueError:
            self.door = None
        return LockStatus(
            bolt=_BOLT.get(states.lock_state, BoltState.UNKNOWN),
            battery_percent=states.battery_percent,
            tamper=states.door_sensor == 0xF0,
            lock_time=states.time,
        )

    async def set_time(self, t: datetime) -> None:
        await self._run(lambda c: c.update_time(t))

    # --- the log -----------------------------------------------------------------------------
    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        """The lock's log after index ``after_seq`` (Nuki's log index is the seq). Entries
        that are not access or bolt events (door sensor, logging switched) are skipped."""

        async def read(client: NukiClient) -> EventPage:
            cursor = after_seq
            while True:
                entries = await client.log_after(cursor, min(limit, 20))
                if not entries:
                    return EventPage((), after_seq)
                events = [e for e in (self._event(x) for x in entries) if e is not None]
                cursor = max(cursor, *(x.index for x in entries))
                if events:
                    return EventPage(events, cursor)

        return await self._run(read)

    def _event(self, entry: LogEntry) -> LockEvent | None:
        return lock_event(entry, self.directory.credential_of_code, self.ctx.now)

    async def ack_events(self, up_to_seq: int) -> None:
        """Nothing to free: a Nuki lock's log is a ring it overwrites itself."""

    async def log_origin(self) -> str | None:
        """This pairing's log (:attr:`NukiKeys.log_origin`), from the key store: no radio."""
        return self._keys()[0].log_origin

    async def log_head(self) -> int | None:
        """The newest entry's index, read now (one exchange)."""
        return await self._run(lambda c: c.log_newest())


async def _nothing() -> None:
    return None


def _no_flags(flags: AdvertFlag) -> None:
    return None


def _forgotten(err: LockAuthError) -> bool:
    """The lock does not know the gateway's authorization (not a wrong PIN)."""
    cause = err.__cause__
    return isinstance(cause, NukiError) and cause.code in (
        ErrorCode.K_NOT_AUTHORIZED,
        ErrorCode.K_DISABLED,
    )


def _is_nuki(data: AdvertisementData) -> bool:
    return profile.parse_beacon(data.manufacturer_data) is not None


def _beacon(sighting: Sighting) -> profile.NukiBeacon | None:
    data = sighting.data
    return None if data is None else profile.parse_beacon(data.manufacturer_data)
