"""The in-process driver for a simulated lock: an ordinary driver, registered by entry point.

It owns a :class:`~lockgate_sim.lock.SimLock` built from its options (``sim.lock`` gives tests
and the demo the keypad and card reader). The serial and BLE drivers put real links in front of
the same lock model; this one calls it directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from drivers.base import (
    AccessRequest,
    BatchResult,
    Capabilities,
    Credential,
    CredentialKind,
    DriverContext,
    DriverOptions,
    EventPage,
    LockDriver,
    LockStatus,
    StoredCredential,
)
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    CredentialRejectedError,
    DriverError,
    DuplicateCodeError,
    LockLinkError,
    LockOfflineError,
    UnsupportedError,
)
from lockgate_sim.lock import LockRebooted, SimLock, SimLockSpec, Slot

_REFUSALS: dict[str, type[DriverError]] = {
    "code_rule": CodeRuleError,
    "capacity": CapacityError,
    "duplicate": DuplicateCodeError,
    "unsupported": UnsupportedError,
}


class SimOptions(DriverOptions):
    type: Literal["sim"] = "sim"
    state_file: Path | None = None
    """Where the simulated lock keeps its flash; ``None`` keeps it in memory only."""
    slots: int = Field(200, gt=0)
    max_batch: int = Field(50, gt=0)
    enforces_time_windows: bool = False
    has_card_reader: bool = True
    code_min_length: int = 4
    code_max_length: int = 8
    mobile_keys: bool = False
    write_delay_s: float = 0.0
    """Time the lock takes to write one slot (slow flash, slow link): spreads a batch out."""
    written_only_by_gateway: bool = False
    """Declare (as Lockgate-protocol locks do) that only the gateway changes its credentials."""


class SimDriver(LockDriver):
    type_name = "sim"
    options_model = SimOptions

    def __init__(self, lock_id: str, options: DriverOptions, ctx: DriverContext) -> None:
        super().__init__(lock_id, options, ctx)
        assert isinstance(options, SimOptions)
        kinds = {CredentialKind.CODE}
        if options.has_card_reader:
            kinds.add(CredentialKind.CARD)
        if options.mobile_keys:
            kinds.add(CredentialKind.MOBILE_KEY)
        spec = SimLockSpec(
            slots=options.slots,
            max_batch=options.max_batch,
            enforces_time_windows=options.enforces_time_windows,
            kinds=frozenset(kinds),
            code_min_length=options.code_min_length,
            code_max_length=options.code_max_length,
            has_card_reader=options.has_card_reader,
            written_only_by_gateway=options.written_only_by_gateway,
        )
        self.sim = SimLock(lock_id, spec, now=ctx.now, state_file=options.state_file)
        self.sim.online_decider = self._ask_gateway
        self.sim.on_event = lambda _event: ctx.events_waiting()
        self._connected = False

    async def _ask_gateway(
        self, kind: CredentialKind, secret: bytes, proof: bytes | None
    ) -> tuple[bool, str, str | None]:
        answer = await self.ctx.decide(
            AccessRequest(self.lock_id, kind, secret, at=self.sim.now(), proof=proof)
        )
        return answer.allow, answer.reason, answer.credential_id

    @property
    def connected(self) -> bool:
        return self._connected and not self.sim.faults.offline

    async def _ready(self) -> None:
        if not self._connected:
            raise LockOfflineError("not connected", lock_id=self.lock_id)
        try:
            await self.sim.operate()
        except ConnectionError as err:
            self._connected = False
            raise LockOfflineError(str(err), lock_id=self.lock_id) from err

    async def connect(self) -> None:
        self._connected = True
        await self._ready()

    async def disconnect(self) -> None:
        self._connected = False

    async def capabilities(self) -> Capabilities:
        await self._ready()
        return self.sim.capabilities()

    async def list_credentials(self) -> list[StoredCredential]:
        await self._ready()
        return self.sim.list_credentials()

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        await self._ready()
        slots = [Slot(c.credential_id, c.kind, c.secret, c.tag, c.window) for c in batch]
        delay = self.options.write_delay_s if isinstance(self.options, SimOptions) else 0.0
        try:
            if delay:
                refused: dict[str, str] = {}
                for slot in slots:  # slot by slot, as a slow lock writes them
                    await asyncio.sleep(delay)
                    refused.update(self.sim.put([slot]))
            else:
                refused = self.sim.put(slots)
        except LockRebooted as err:
            self._connected = False
            raise LockLinkError("lock rebooted during the batch", lock_id=self.lock_id) from err
        return BatchResult(
            {
                cid: _REFUSALS.get(code, CredentialRejectedError)(
                    f"lock refused the credential: {code}",
                    lock_id=self.lock_id,
                    credential_id=cid,
                )
                for cid, code in refused.items()
            }
        )

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        await self._ready()
        self.sim.delete(list(credential_ids))
        return BatchResult()

    async def lock(self) -> None:
        await self._ready()
        self.sim.lock()

    async def unlock(self, hold_seconds: float | None = None) -> None:
        await self._ready()
        self.sim.unlock(hold_seconds)

    async def status(self) -> LockStatus:
        await self._ready()
        return LockStatus(
            bolt=self.sim.bolt,
            battery_percent=self.sim.battery_percent,
            tamper=self.sim.tamper,
            lock_time=self.sim.now(),
            firmware=self.sim.spec.firmware,
        )

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        await self._ready()
        events = self.sim.events_after(after_seq, limit)
        return EventPage(events, events[-1].seq if events else after_seq)

    async def ack_events(self, up_to_seq: int) -> None:
        await self._ready()
        self.sim.ack(up_to_seq)

    async def set_time(self, t: datetime) -> None:
        await self._ready()
        self.sim.set_time(t)
