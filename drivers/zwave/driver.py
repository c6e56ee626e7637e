"""The Z-Wave lock driver: :class:`drivers.base.LockDriver` over a Z-Wave JS server.

One lock is one node id on one server; the websocket is shared with the other locks of that
server (:mod:`drivers.zwave.connection`). Credentials are PIN codes in User Code slots, recorded
in the slot map (:mod:`drivers.zwave.slotmap`) in the gateway's encrypted store; each put and
delete is one slot at a time, confirmed by a User Code Get. Events come from Notification
reports into the driver's journal (:mod:`drivers.zwave.journal`); a reconnect records the gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from zwave_js_server.const import CommandClass
from zwave_js_server.model.node import Node

from drivers.backoff import Backoff
from drivers.base import (
    BatchResult,
    BoltState,
    Capabilities,
    Credential,
    CredentialKind,
    DriverContext,
    DriverOptions,
    EventKind,
    EventPage,
    LockDriver,
    LockEvent,
    LockStatus,
    StoredCredential,
)
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    CredentialRejectedError,
    DriverConfigError,
    DriverError,
    DuplicateCodeError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
    UnsupportedError,
)
from drivers.zwave import doorlock
from drivers.zwave.commands import ZWaveArgumentError, invoke
from drivers.zwave.connection import ServerRegistry, ZWaveServer, default_server_registry
from drivers.zwave.doorlock import DoorLock
from drivers.zwave.events import interpret
from drivers.zwave.journal import Journal
from drivers.zwave.options import ZWaveOptions
from drivers.zwave.schedule import Schedules, is_open
from drivers.zwave.slotmap import SlotEntry, SlotMap, SlotState
from drivers.zwave.usercodes import SlotReading, UserCodeLimits, UserCodes, cc_version

log = logging.getLogger(__name__)

MAX_BATCH = 25


class ZWaveDriver(LockDriver):
    type_name = "zwave"
    options_model = ZWaveOptions

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        servers: ServerRegistry | None = None,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        if not isinstance(options, ZWaveOptions):
            raise DriverConfigError("zwave driver needs ZWaveOptions", lock_id=lock_id)
        self.zw = options
        self._servers = servers
        self.server: ZWaveServer | None = None
        self.slots = SlotMap(ctx.keystore)
        self.journal = Journal(ctx.keystore)
        self._node: Node | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._node_gen = 0
        self._limits: UserCodeLimits | None = None
        self._caps: Capabilities | None = None
        self._caps_gen = -1
        self._timed_unlock: bool | None = None
        self._verified_gen = -1
        self._verified_at: datetime | None = None
        self._duplicates: set[int] = set()
        self._jammed = False

    # --- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._attach()

    async def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.unsubscribe(self.zw.node_id, self._on_connect, self._on_drop)
            await (self._servers or default_server_registry()).release(server)
        self._detach_node()

    def _attach(self) -> ZWaveServer:
        if self.server is None:
            registry = self._servers or default_server_registry()
            self.server = registry.acquire(
                self.zw.server,
                clock=self.ctx.clock,
                backoff=Backoff(self.zw.reconnect_min, self.zw.reconnect_max),
            )
            self.server.subscribe(self.zw.node_id, self._on_connect, self._on_drop)
        return self.server

    # --- the shared connection's news ---------------------------------------------------------
    def _on_connect(self, node: Node, generation: int) -> None:
        self._detach_node()
        self._node = node
        self._node_gen = generation
        self._unsubscribe = node.on("notification", self._on_notification)
        now = self.ctx.now()
        if self.journal.mark_connected():
            server = self.server
            since = server.dropped_at if server is not None else None
            what = f"since {since.isoformat()}" if since else "while the gateway was not running"
            self.journal.append(
                LockEvent(
                    seq=0,
                    occurred_at=now,
                    kind=EventKind.EVENTS_LOST,
                    reason=f"Z-Wave JS connection was down {what}: the lock's events from "
                    "then are lost; the lock was re-read",
                )
            )
            self.ctx.events_waiting()

    def _on_drop(self, at: datetime) -> None:
        log.warning("%s: Z-Wave JS connection lost", self.lock_id, extra={"lock": self.lock_id})

    def _detach_node(self) -> None:
        self._node = None
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _on_notification(self, event: dict[str, Any]) -> None:
        notification = event.get("notification")
        if notification is None or getattr(notification, "command_class", None) != (
            CommandClass.NOTIFICATION
        ):
            return
        heard = interpret(
            int(notification.type_),
            int(notification.event),
            notification.parameters,
            self.ctx.now(),
            self._credential_in,
        )
        if heard.duplicate_slot is not None:
            self._duplicates.add(heard.duplicate_slot)
        if heard.jammed:
            self._jammed = True
        if heard.event is not None:
            if heard.event.kind in (EventKind.LOCKED, EventKind.UNLOCKED, EventKind.ACCESS_ALLOWED):
                self._jammed = False
            self.journal.append(heard.event)
            self.ctx.events_waiting()

    def _credential_in(self, slot: int) -> str | None:
        entry = self.slots.entries.get(slot)
        return entry.credential_id if entry is not None else None

    # --- link -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        server = self.server
        return (
            server is not None
            and server.ready
            and self._node is not None
            and self._node_gen == server.generation
        )

    async def connect(self) -> None:
        await self._ready_node()

    async def disconnect(self) -> None:
        """The websocket is shared with the server's other locks: it stays up until the last
        of them closes (:meth:`close`)."""

    async def _ready_node(self) -> Node:
        server = self._attach()
        if not server.ready:
            await server.wait_ready(self.zw.connect_timeout)
        node = server.node(self.zw.node_id)
        if node is None:
            raise LockOfflineError(
                f"node {self.zw.node_id} is not in the Z-Wave network of {self.zw.server}",
                lock_id=self.lock_id,
            )
        if self._node is not node:
            self._on_connect(node, server.generation)
        return node

    def _user_codes(self, node: Node) -> UserCodes:
        return UserCodes(node, timeout=self.zw.command_timeout, lock_id=self.lock_id)

    def _schedules(self, node: Node) -> Schedules:
        return Schedules(node, timeout=self.zw.command_timeout, lock_id=self.lock_id)

    def _door(self, node: Node) -> DoorLock:
        return DoorLock(node, timeout=self.zw.command_timeout, lock_id=self.lock_id)

    # --- capabilities -----------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        node = await self._ready_node()
        if self._caps is not None and self._caps_gen == self._node_gen:
            return self._caps
        limits = await self._user_codes(node).limits()
        sched = self._schedules(node)
        has_clock = sched.has_clock()
        enforces = self.zw.use_schedules and has_clock and await sched.year_day_slots() >= 1
        slots = self._slot_range(limits)
        self._limits = limits
        self._caps = Capabilities(
            slots=len(slots),
            max_batch=MAX_BATCH,
            kinds=frozenset({CredentialKind.CODE}),
            enforces_time_windows=enforces,
            code_min_length=self.zw.code_min_length or limits.min_length,
            code_max_length=self.zw.code_max_length or limits.max_length,
            code_alphabet=limits.alphabet,
            has_keypad=True,
            has_card_reader=False,
            online_validation=False,
            has_audit_log=True,  # the driver's own journal of the lock's notifications
            has_clock=has_clock,
            remote_actuation=cc_version(node, CommandClass.DOOR_LOCK) > 0,
            has_slots=True,
        )
        self._caps_gen = self._node_gen
        return self._caps

    def _slot_range(self, limits: UserCodeLimits) -> range:
        first = self.zw.first_slot
        last = limits.users
        if self.zw.slot_count is not None:
            last = min(last, first + self.zw.slot_count - 1)
        return range(first, max(first, last + 1))

    async def _ensure_caps(self) -> tuple[Node, Capabilities, UserCodeLimits]:
        caps = await self.capabilities()
        node = await self._ready_node()
        assert self._limits is not None
        return node, caps, self._limits

    # --- reading what the lock holds ----------------------------------------------------------
    async def list_credentials(self) -> list[StoredCredential]:
        node, _, limits = await self._ensure_caps()
        codes = self._user_codes(node)
        await self._settle(codes)
        await self._verify_if_due(codes, limits)
        return [
            StoredCredential(e.credential_id, CredentialKind.CODE, e.tag, e.window)
            for e in self.slots.held()
        ]

    async def _settle(self, codes: UserCodes) -> None:
        """Finish what a crash or a lost link left half done: one Get per unsettled slot."""
        for entry in self.slots.unsettled():
            try:
                reading = await codes.read(entry.slot)
            except LockTimeoutError:
                if not self._server_ready():
                    raise
                continue  # the node does not answer: the slot stays unsettled, not listed

            if entry.state is SlotState.WRITING:
                if reading.occupied and (reading.masked or self._holds(entry, reading)):
                    self.slots.set_state(entry, SlotState.HELD)
                elif reading.occupied:
                    await codes.clear(entry.slot)  # our slot, but not our code: make it empty
                    self.slots.drop(entry.slot)
                else:
                    self.slots.drop(entry.slot)
            elif reading.occupied:
                await codes.clear(entry.slot)
                if (await codes.read(entry.slot)).occupied:
                    raise ProtocolError(
                        f"slot {entry.slot} still holds a code after clear", lock_id=self.lock_id
                    )
                self.slots.drop(entry.slot)
            else:
                self.slots.drop(entry.slot)

    def _holds(self, entry: SlotEntry, reading: SlotReading) -> bool:
        return self.slots.matches(entry, reading.code)

    async def _verify_if_due(self, codes: UserCodes, limits: UserCodeLimits) -> None:
        now = self.ctx.now()
        due = (
            not self.slots.scanned
            or self._verified_gen != self._node_gen
            or self._verified_at is None
            or now - self._verified_at > timedelta(seconds=self.zw.verify_interval)
        )
        if not due:
            return
        checksum = await codes.checksum() if limits.checksum else None
        if not self.slots.scanned and checksum == 0 and not self.slots.entries:
            self.slots.foreign.clear()  # an empty lock: nothing to scan
        elif checksum is None or checksum != self.slots.checksum:
            await self._scan(codes, limits)
            checksum = await codes.checksum() if limits.checksum else None
        self.slots.scanned = True
        self.slots.checksum = checksum
        self.slots.save()
        self._verified_gen = self._node_gen
        self._verified_at = now

    async def _scan(self, codes: UserCodes, limits: UserCodeLimits) -> None:
        """Read every slot in range: the slot map follows what the lock really holds."""
        log.info("%s: reading all User Code slots", self.lock_id, extra={"lock": self.lock_id})
        for slot in self._slot_range(limits):
            reading = await codes.read(slot)
            entry = self.slots.entries.get(slot)
            if entry is not None:
                if not reading.occupied:
                    self.slots.drop(slot)  # gone from the lock: the gateway puts it again
                elif not reading.masked and not self._holds(entry, reading):
                    self.slots.drop(slot)  # replaced at the keypad: not ours any more
                    self.slots.foreign.add(slot)
            elif reading.occupied:
                self.slots.foreign.add(slot)
            else:
                self.slots.foreign.discard(slot)

    # --- writing -------------------------------------------------------------------------------
    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        node, caps, limits = await self._ensure_caps()
        codes = self._user_codes(node)
        await self._settle(codes)
        await self._verify_if_due(codes, limits)  # never write into a slot not known free
        failures: dict[str, DriverError] = {}
        broken: DriverError | None = None
        changed = False
        for cred in batch:
            if broken is not None:
                failures[cred.credential_id] = _not_attempted(broken, self.lock_id, cred)
                continue
            try:
                await self._put_one(node, codes, caps, limits, cred)
                changed = True
            except CredentialRejectedError as err:
                err.credential_id = cred.credential_id
                failures[cred.credential_id] = err
            except LockTimeoutError as err:  # this node does not answer: its credentials fail
                if not self._server_ready():
                    raise
                err.credential_id = cred.credential_id
                failures[cred.credential_id] = err
                broken = err
        if changed and broken is None:
            await self._note_checksum(codes, limits)
        return BatchResult(failures)

    async def _put_one(
        self,
        node: Node,
        codes: UserCodes,
        caps: Capabilities,
        limits: UserCodeLimits,
        cred: Credential,
    ) -> None:
        cid = cred.credential_id
        if cred.kind is not CredentialKind.CODE:
            raise UnsupportedError(f"Z-Wave locks hold PIN codes, not {cred.kind.value}s")
        try:
            code = cred.secret.decode("ascii")
        except UnicodeDecodeError:
            raise CodeRuleError("code is not ASCII") from None
        problem = caps.code_problem(code)
        if problem is not None:
            raise CodeRuleError(problem)
        holder = self.slots.holder_of_code(code)
        if holder is not None and holder.credential_id != cid:
            raise DuplicateCodeError("another credential on this lock has the same code")
        old = self.slots.by_credential(cid)
        slot = old.slot if old is not None else self.slots.free_slot(self._slot_range(limits))
        if slot is None:
            raise CapacityError(f"no free User Code slot (of {caps.slots})")
        window = None if is_open(cred.window) or not caps.enforces_time_windows else cred.window
        entry = SlotEntry(
            slot, cid, cred.tag, self.slots.code_hash(code), SlotState.WRITING, window
        )
        self.slots.put(entry)  # on record before the lock hears of it
        if caps.enforces_time_windows:
            sched = self._schedules(node)
            if window is not None:
                await sched.set_window(slot, window)
            elif old is not None and old.window is not None:
                await sched.clear_window(slot)
        self._duplicates.discard(slot)
        try:
            await codes.write(slot, code)
        except ZWaveArgumentError:
            self.slots.drop(slot)
            raise CodeRuleError("Z-Wave JS refused the code (length or characters)") from None
        reading = await codes.read(slot)
        if reading.occupied and (reading.masked or self.slots.matches(entry, reading.code)):
            self.slots.set_state(entry, SlotState.HELD)
            return
        if reading.occupied:
            await codes.clear(slot)  # what stayed there is ours (an older code): remove it
        self.slots.drop(slot)
        if slot in self._duplicates:
            raise DuplicateCodeError("the lock refused the code: it holds it in another slot")
        raise CredentialRejectedError("the lock did not store the code")

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        node, caps, limits = await self._ensure_caps()
        codes = self._user_codes(node)
        await self._settle(codes)
        failures: dict[str, DriverError] = {}
        broken: DriverError | None = None
        changed = False
        for cid in credential_ids:
            entry = self.slots.by_credential(cid)
            if entry is None:
                continue
            if broken is not None:
                failures[cid] = _not_attempted(broken, self.lock_id, None)
                continue
            try:
                entry = self.slots.set_state(entry, SlotState.CLEARING)
                await codes.clear(entry.slot)
                if (await codes.read(entry.slot)).occupied:
                    raise ProtocolError(f"slot {entry.slot} still holds a code after clear")
                if entry.window is not None and caps.enforces_time_windows:
                    await self._schedules(node).clear_window(entry.slot)
                self.slots.drop(entry.slot)
                changed = True
            except LockTimeoutError as err:
                if not self._server_ready():
                    raise
                err.credential_id = cid
                failures[cid] = err
                broken = err
            except LockLinkError:
                raise  # the connection to Z-Wave JS: the gateway retries the pass
            except DriverError as err:
                err.credential_id = cid
                failures[cid] = err
        if changed and broken is None:
            await self._note_checksum(codes, limits)
        return BatchResult(failures)

    async def _note_checksum(self, codes: UserCodes, limits: UserCodeLimits) -> None:
        if limits.checksum:
            self.slots.checksum = await codes.checksum()
            self.slots.save()
            self._verified_at = self.ctx.now()
            self._verified_gen = self._node_gen

    def _server_ready(self) -> bool:
        return self.server is not None and self.server.ready

    # --- bolt, status, clock --------------------------------------------------------------------
    async def lock(self) -> None:
        node = await self._ready_node()
        await self._door(node).set_mode(doorlock.SECURED)

    async def unlock(self, hold_seconds: float | None = None) -> None:
        node = await self._ready_node()
        door = self._door(node)
        if hold_seconds is not None:
            if self._timed_unlock is None:
                self._timed_unlock = await door.supports_timed()
            if self._timed_unlock:
                await door.unlock_for(hold_seconds)
                return
            raise UnsupportedError(
                "the lock has no timed operation: it cannot relock by itself",
                lock_id=self.lock_id,
            )
        await door.set_mode(doorlock.UNSECURED)

    async def status(self) -> LockStatus:
        node = await self._ready_node()
        mode = await self._door(node).mode()
        battery: int | None = None
        if any(c.id == CommandClass.BATTERY for c in node.command_classes):
            result = await invoke(
                node,
                CommandClass.BATTERY,
                "get",
                within=self.zw.command_timeout,
                lock_id=self.lock_id,
            )
            if isinstance(result, dict) and isinstance(result.get("level"), int):
                battery = int(result["level"])
        bolt = doorlock.bolt_of(mode)
        if self._jammed:
            bolt = BoltState.JAMMED
        return LockStatus(bolt=bolt, battery_percent=battery, firmware=node.firmware_version)

    async def set_time(self, t: datetime) -> None:
        node = await self._ready_node()
        await self._schedules(node).set_clock(t)

    # --- events ------------------------------------------------------------------------------
    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        return self.journal.page(after_seq, limit)

    async def ack_events(self, up_to_seq: int) -> None:
        self.journal.ack(up_to_seq)

    async def log_head(self) -> int | None:
        """The journal's newest seq: it lives in the gateway's key store, so it counts on
        across a new device under this lock id (no :meth:`log_origin` needed); it starts
        again only when the key store forgets the lock, which the gateway knows."""
        return self.journal.last_seq


def _not_attempted(cause: DriverError, lock_id: str, cred: Credential | None) -> DriverError:
    err = type(cause)(f"not attempted: {cause.message}", lock_id=lock_id)
    if cred is not None:
        err.credential_id = cred.credential_id
    return err
