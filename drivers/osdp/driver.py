"""The OSDP driver: one reader (card and keypad) on an RS-485 bus, decided by the gateway.

A reader holds no credentials: every card it reads and every PIN typed on it goes to the
gateway's validator (:attr:`DriverContext.decide`, which records each decision as an access
event and applies the lockouts), and the answer comes back to the door as commands: allow pulses
the strike output for ``strike_seconds`` and shows green with a beep, deny shows red with the
deny buzz. The readers of one port share one control panel (:mod:`drivers.osdp.panel`).

Health (online, offline, key rejected, tamper, power) is this driver's own log: read through
:meth:`fetch_events` like any lock's audit log, and the reader's ``connected`` and ``tamper``
in the gateway's state. The log is in memory; a restart loses only health entries that were
not yet collected (decisions are recorded by the gateway when they are made).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import osdp

from drivers.backoff import Backoff
from drivers.base import (
    AccessAnswer,
    AccessRequest,
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
    SecurityAlert,
    StoredCredential,
)
from drivers.errors import (
    DriverConfigError,
    DriverError,
    LockAuthError,
    LockOfflineError,
    UnsupportedError,
)
from drivers.osdp import feedback
from drivers.osdp.errors import ProvisioningRefusedError
from drivers.osdp.keypad import EntryResult, PinEntry
from drivers.osdp.options import OsdpOptions, parse_scbk
from drivers.osdp.panel import Panel, ReaderHealth, ReaderSlot
from drivers.osdp.panels import PanelRegistry, default_panel_registry
from drivers.osdp.wiegand import CardReadError, decode_card
from drivers.secrets import SecretError

log = logging.getLogger(__name__)

INPUT_QUEUE = 64
LOG_KEEP = 1000
STATUS_REPORT_LOCAL: int = osdp.StatusReportType.Local
HEALTH_EVENTS = {
    ReaderHealth.ONLINE: EventKind.ONLINE,
    ReaderHealth.OFFLINE: EventKind.OFFLINE,
    ReaderHealth.KEY_REJECTED: EventKind.KEY_REJECTED,
}


class OsdpDriver(LockDriver):
    type_name = "osdp"
    options_model = OsdpOptions

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        panels: PanelRegistry | None = None,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        if not isinstance(options, OsdpOptions):
            raise DriverConfigError("osdp driver needs OsdpOptions", lock_id=lock_id)
        self.osdp_options = options
        self._panels = panels
        self._panel: Panel | None = None
        self._slot: ReaderSlot | None = None
        self._inputs: asyncio.Queue[dict[str, Any]] = asyncio.Queue(INPUT_QUEUE)
        self._worker: asyncio.Task[None] | None = None
        kp = options.keypad
        self.pin_entry = PinEntry(
            min_length=kp.min_length,
            max_length=kp.max_length,
            inter_key_timeout=kp.inter_key_timeout,
            now=ctx.now,
        )
        self._log: deque[LockEvent] = deque(maxlen=LOG_KEEP)
        self._next_seq = 1
        self._cursor_known = False
        self._tamper = False
        self._power_ok = True
        self.decisions = 0
        self.misreads = 0

    def __repr__(self) -> str:
        return f"OsdpDriver({self.lock_id!r}, address={self.osdp_options.address})"

    # --- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._panel is not None:
            return
        opts = self.osdp_options
        key = self._read_key()
        registry = self._panels or default_panel_registry()
        panel = await registry.acquire(opts.port, opts.baud)
        slot = ReaderSlot(
            opts.address,
            key,
            on_event=self._on_event,
            on_health=self._on_health,
            revive=Backoff(opts.revive_min, opts.revive_max),
        )
        try:
            panel.attach(slot)
        except DriverConfigError as err:
            await registry.release(panel)
            err.lock_id = self.lock_id
            raise
        self._panel, self._slot = panel, slot
        self._worker = asyncio.create_task(self._serve(), name=f"osdp-reader:{self.lock_id}")

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.wait([worker])
        panel, self._panel = self._panel, None
        if panel is not None:
            panel.detach(self.osdp_options.address)
            await (self._panels or default_panel_registry()).release(panel)

    def _read_key(self) -> bytes:
        try:
            return parse_scbk(self.osdp_options.key.read_text())
        except SecretError as err:
            raise DriverConfigError(str(err), lock_id=self.lock_id) from None
        except (ValueError, UnicodeDecodeError) as err:
            raise DriverConfigError(
                f"reader key {self.osdp_options.key.path()}: {err}", lock_id=self.lock_id
            ) from None

    @property
    def panel(self) -> Panel | None:
        return self._panel

    @property
    def health(self) -> ReaderHealth:
        return self._slot.health if self._slot is not None else ReaderHealth.OFFLINE

    # --- link --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """The reader answers with its secure channel up on our key."""
        return self.health is ReaderHealth.ONLINE

    async def connect(self) -> None:
        """Nothing to open: the panel polls the reader all the time. A reader that is away is
        its health (``connected``, the health log), not a failure of the gateway's passes."""
        if self._panel is None:
            raise LockOfflineError("driver not started", lock_id=self.lock_id)

    # --- what the gateway plans with ---------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        kp = self.osdp_options.keypad
        return Capabilities(
            slots=0,
            max_batch=1,
            kinds=frozenset({CredentialKind.CODE, CredentialKind.CARD}),
            enforces_time_windows=False,
            code_min_length=kp.min_length,
            code_max_length=kp.max_length,
            has_keypad=True,
            has_card_reader=True,
            online_validation=True,
            has_audit_log=True,
            has_clock=False,
            remote_actuation=True,
            has_slots=False,
            stores_credentials=False,
        )

    async def list_credentials(self) -> list[StoredCredential]:
        return []

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        err = UnsupportedError("an OSDP reader stores no credentials", lock_id=self.lock_id)
        return BatchResult({c.credential_id: err for c in batch})

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        return BatchResult()

    # --- the door ----------------------------------------------------------------------------
    async def unlock(self, hold_seconds: float | None = None) -> None:
        """Release the strike for ``hold_seconds`` (default ``strike_seconds``)."""
        await self._submit(feedback.strike_pulse(self.osdp_options, hold_seconds))

    async def lock(self) -> None:
        """Strike off now (cancels a pulse in progress)."""
        await self._submit(feedback.strike_off(self.osdp_options))

    async def status(self) -> LockStatus:
        return LockStatus(BoltState.UNKNOWN, tamper=self._tamper)

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        if not self._cursor_known:
            # The gateway's cursor outlives this process; our log does not. Number what is
            # pending after it, once, so nothing is mistaken for an entry already recorded.
            self._cursor_known = True
            self._renumber(after_seq + 1)
        events = [e for e in self._log if e.seq > after_seq][:limit]
        return EventPage(events, events[-1].seq if events else after_seq)

    def _renumber(self, first: int) -> None:
        old = list(self._log)
        self._log.clear()
        for i, e in enumerate(old):
            self._log.append(LockEvent(first + i, e.occurred_at, e.kind, reason=e.reason))
        self._next_seq = max(self._next_seq, first + len(old))

    async def ack_events(self, up_to_seq: int) -> None:
        while self._log and self._log[0].seq <= up_to_seq:
            self._log.popleft()

    # --- key provisioning --------------------------------------------------------------------
    async def commission(self, pairing_secret: str) -> None:
        """Give a new reader (in install mode, on the default key) its site key.

        OSDP readers have no pairing secret: the install mode set on the reader is the
        out-of-band step, and ``pairing_secret`` is not used. Refused when the reader already
        answers on its site key, or does not take the default key.
        """
        panel, slot = self._require_started()
        if slot.health is ReaderHealth.ONLINE:
            raise ProvisioningRefusedError(
                "the reader already has its site key", lock_id=self.lock_id
            )
        log.info("%s: provisioning the site key from install mode", self.lock_id)
        try:
            from_default = await panel.provision(slot.address, timeout=8.0)
        except TimeoutError:
            raise ProvisioningRefusedError(
                "the reader does not take the default key (it has another key, or it is not "
                "in install mode)",
                lock_id=self.lock_id,
            ) from None
        if not from_default:
            raise ProvisioningRefusedError(
                "the reader already has its site key", lock_id=self.lock_id
            )
        try:
            async with asyncio.timeout(8.0):
                await panel.wait_health(slot.address, ReaderHealth.ONLINE)
        except TimeoutError:
            raise LockAuthError(
                "the reader took the key but does not come online with it", lock_id=self.lock_id
            ) from None
        log.info("%s: site key set; reader online on it", self.lock_id)

    def _require_started(self) -> tuple[Panel, ReaderSlot]:
        if self._panel is None or self._slot is None:
            raise LockOfflineError("driver not started", lock_id=self.lock_id)
        return self._panel, self._slot

    # --- from the reader ---------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        """On the loop (the panel hands events over from libosdp's thread)."""
        try:
            self._inputs.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("%s: reader input queue full; a read was dropped", self.lock_id)

    def _on_health(self, health: ReaderHealth) -> None:
        kind = HEALTH_EVENTS.get(health)
        if kind is not None:
            self._record(kind)
        if health is ReaderHealth.KEY_REJECTED:
            # A reader that answers the challenge with another key: a new reader still in
            # install mode, a swapped reader, or someone else's device on the bus.
            self.ctx.alert(
                SecurityAlert(
                    self.lock_id,
                    "key_rejected",
                    f"the device at OSDP address {self.osdp_options.address} answers with a key "
                    "that is not this reader's site key (install mode, swapped, or foreign)",
                    address=f"{self.osdp_options.port}#{self.osdp_options.address}",
                )
            )

    async def _serve(self) -> None:
        while True:
            event = await self._inputs.get()
            try:
                await self._handle(event)
            except DriverError as err:
                log.warning("%s: %s", self.lock_id, err.message)
            except Exception:  # one bad read must not end the reader's service
                log.exception("%s: handling a reader event failed", self.lock_id)

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == osdp.Event.CardRead:
            await self._card(event)
        elif kind == osdp.Event.KeyPress:
            for entry in self.pin_entry.feed(bytes(event.get("data", b""))):
                if entry.result is EntryResult.PIN:
                    await self._decide(CredentialKind.CODE, entry.pin.encode())
                else:
                    log.info("%s: keypad entry refused (%s)", self.lock_id, entry.result.value)
                    await self._show(feedback.deny(self.osdp_options))
        elif kind == osdp.Event.Status:
            self._status_report(event)

    async def _card(self, event: dict[str, Any]) -> None:
        opts = self.osdp_options
        try:
            card = decode_card(
                int(event.get("format", 0)),
                bytes(event.get("data", b"")),
                int(event.get("length", 0)),
                wiegand_37=opts.wiegand_37,
            )
        except CardReadError as err:
            self.misreads += 1
            log.info("%s: card misread (%s)", self.lock_id, err)
            await self._show(feedback.deny(opts))
            return
        await self._decide(CredentialKind.CARD, card.card_number(opts.card_number).encode())

    async def _decide(self, kind: CredentialKind, secret: bytes) -> None:
        request = AccessRequest(self.lock_id, kind, secret, at=self.ctx.now())
        try:
            answer = await self.ctx.decide(request)
        except DriverError:
            raise
        except Exception:
            log.exception("%s: the gateway could not decide; denied", self.lock_id)
            answer = AccessAnswer(False, "gateway_error")
        self.decisions += 1
        log.info(
            "%s: %s %s (%s)",
            self.lock_id,
            kind.value,
            "allowed" if answer.allow else "denied",
            answer.reason,
        )
        opts = self.osdp_options
        await self._show(feedback.allow(opts) if answer.allow else feedback.deny(opts))

    async def _show(self, commands: list[dict[str, Any]]) -> None:
        for command in commands:
            await self._submit(command)

    async def _submit(self, command: dict[str, Any]) -> None:
        panel, slot = self._require_started()
        await panel.submit(slot.address, command)

    def _status_report(self, event: dict[str, Any]) -> None:
        if event.get("type") != STATUS_REPORT_LOCAL:
            return
        report = bytes(event.get("report", b""))
        if len(report) >= 1 and bool(report[0]) != self._tamper:
            self._tamper = bool(report[0])
            self._record(EventKind.TAMPER if self._tamper else EventKind.TAMPER_CLEARED)
        if len(report) >= 2 and (not report[1]) != self._power_ok:
            self._power_ok = not report[1]
            self._record(EventKind.POWER_RESTORED if self._power_ok else EventKind.POWER_FAILURE)

    def _record(self, kind: EventKind) -> None:
        self._log.append(LockEvent(self._next_seq, self.ctx.now(), kind))
        self._next_seq += 1
        good = kind in (EventKind.ONLINE, EventKind.TAMPER_CLEARED, EventKind.POWER_RESTORED)
        log.log(logging.INFO if good else logging.WARNING, "%s: %s", self.lock_id, kind.value)
        self.ctx.events_waiting()
