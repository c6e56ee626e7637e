"""Keep one lock in line with what the grants say right now.

A :class:`LockReconciler` wakes when the cloud data changed, when the next window opens or
closes, when a retry is due, or when the lock has new audit-log entries. Each pass: plan the
desired set at *t*, read what the lock holds, delete what must go and put what is missing or
changed (batches as large as the lock allows), read back and compare content tags, record the
per-credential sync state, and pull the lock's audit log into the outbox. Everything is
idempotent: a pass after a crash finds what already happened on the lock and does not repeat it.

A pass runs in one :meth:`~gateway.handle.LockHandle.session` of the lock's handle (exclusive,
connected, each call bounded). A pass that fails, for whatever reason, is contained here: a
lock problem (:class:`~drivers.errors.DriverError`) is logged at WARNING and retried with
backoff; anything else (a driver's bug, wrapped as :class:`~drivers.errors.DriverFault`, or one
of ours) is logged once at ERROR with its traceback and retried after the longest delay. The
other locks, the sync and the decisions never notice.

A full disk does not stop a pass: the lock is brought in line all the same (a code that ended
comes off), and the pass then reports ``store_full`` and is retried with backoff until its sync
state is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from drivers.backoff import Backoff
from drivers.base import Capabilities, Credential, StoredCredential
from drivers.errors import DriverError, DriverFault
from gateway.audit_log import collect_audit_log
from gateway.clock import Clock
from gateway.config import ReconcileConfig
from gateway.cooperative import Slicer, after_pending_io
from gateway.handle import LockHandle, LockOps
from gateway.planner import CloudView, LockScope, Plan, plan_shared
from gateway.store.db import StoreFullError
from gateway.store.store import Store
from gateway.store.sync_state import CredentialSyncState, SyncStatus

T = TypeVar("T")
LOCK_TIME_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LockHealth:
    connected: bool = False
    last_pass_at: datetime | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    passes: int = 0


class LockReconciler:
    def __init__(
        self,
        handle: LockHandle,
        scope: LockScope,
        store: Store,
        views: Callable[[], CloudView],
        clock: Clock,
        config: ReconcileConfig,
        *,
        backoff: Backoff | None = None,
        clock_trusted: Callable[[], bool] = lambda: False,
        fresh_view: Callable[[], Awaitable[CloudView]] | None = None,
    ) -> None:
        """``fresh_view``: the current view, built without holding the event loop (the
        gateway's :meth:`~gateway.views.ViewCache.refresh`); ``views`` otherwise."""
        self.handle = handle
        self._fresh_view = fresh_view
        self.scope = scope
        self.lock_id = scope.lock_id
        self._store = store
        self._views = views
        self._clock = clock
        self._config = config
        self._backoff = backoff or Backoff(config.retry_min_s, config.retry_max_s)
        self._log = logging.LoggerAdapter(logging.getLogger(__name__), {"lock": self.lock_id})
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._connections = 0
        self._caps: Capabilities | None = None
        self._refused: dict[str, bytes] = {}
        self._force_put = False
        self._creds_due = True
        self._events_due = True
        self._seen_version = -1
        self._clock_trusted = clock_trusted
        self._time_set_at: datetime | None = None
        self._unsaved: StoreFullError | None = None
        """A sync-state write of this pass found the disk full."""
        self.health = LockHealth()
        self.last_plan: Plan | None = None

    # --- signals from outside ----------------------------------------------------------------
    def wake(self) -> None:
        """The cloud data changed, or someone wants a pass now."""
        self._creds_due = True
        self._wake.set()

    def events_waiting(self) -> None:
        self._events_due = True
        self._wake.set()

    def repush(self) -> None:
        """Put every desired credential again, whatever the lock says it holds."""
        self._force_put = True
        self._refused.clear()
        self.wake()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after some pass (bound it with asyncio.timeout)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        # The first pass at once: with the cloud away, the store alone says what is due.
        next_wake: datetime | None = self._clock.now()
        while True:
            await self._clock.wait_until(next_wake, self._wake)
            await after_pending_io()  # woken by an unlock: its answer goes out first
            self._wake.clear()
            t = self._clock.now()
            if next_wake is None or t >= next_wake:
                self._creds_due = True
            try:
                async with self.handle.session() as ops:
                    p = await self._pass(t, ops)
            except Exception as err:
                retry = t + timedelta(seconds=self._failed(err))
                planned = self.last_plan.next_change if self.last_plan else None
                next_wake = min(x for x in (retry, planned) if x is not None)
            else:
                self._backoff.reset()
                verify = t + self._verify_every()
                next_wake = verify if p.next_change is None else min(p.next_change, verify)
            async with self._changed:
                self._changed.notify_all()

    def _verify_every(self) -> timedelta:
        """How long the lock's credentials are trusted to be as the last pass left them."""
        seconds = self._config.event_poll_s
        if self._caps is not None and self._caps.written_only_by_gateway:
            seconds = max(seconds, self._config.verify_s)
        return timedelta(seconds=seconds)

    def _failed(self, err: Exception) -> float:
        """Record why the pass failed and return the delay before the next one."""
        if isinstance(err, DriverError) and not isinstance(err, DriverFault):
            code, message, fault = err.code, err.message, None
        elif isinstance(err, DriverFault):
            code, message, fault = err.code, err.message, err.__cause__ or err
        elif isinstance(err, StoreFullError):
            code, message, fault = err.code, "the store's disk is full: sync state not saved", None
        else:  # not from the driver: a bug of ours, or the store
            code, message, fault = "internal_error", f"{type(err).__name__} in the pass", err
        repeat = self.health.last_error_code == code
        if fault is not None:
            self._log.log(
                logging.DEBUG if repeat else logging.ERROR,
                "%s: pass failed (%s): %s; retrying after the longest delay",
                self.lock_id,
                code,
                message,
                exc_info=fault,
            )
        else:
            self._log.log(
                logging.DEBUG if repeat else logging.WARNING,
                "%s: pass failed (%s): %s",
                self.lock_id,
                code,
                message,
            )
        self.health = replace(
            self.health,
            connected=self.handle.connected,
            last_error=message,
            last_error_code=code,
        )
        if fault is not None or (isinstance(err, DriverError) and not err.retryable):
            return self._backoff.give_up_for_now()
        return self._backoff.next_delay()

    async def _pass(self, t: datetime, ops: LockOps) -> Plan:
        if self.handle.connections != self._connections:  # (re)connected: it may have rebooted
            self._connections = self.handle.connections
            self._caps = None
            self._creds_due = self._events_due = True
        if self._caps is None:
            self._caps = await ops.capabilities()
            self._time_set_at = None
        await self._keep_lock_time(t, self._caps, ops)
        if not self._creds_due and self.last_plan is not None:
            if self._events_due:
                await self._pull_events(self._views(), ops)
            return self.last_plan
        # Cleared before the view is read, not after the pass: a wake() during the pass (the
        # cloud changed while we talked to the lock) must ask for another one, not be lost.
        self._creds_due = False
        try:
            return await self._credentials_pass(t, ops)
        except BaseException:
            self._creds_due = True
            raise

    async def _credentials_pass(self, t: datetime, ops: LockOps) -> Plan:
        assert self._caps is not None
        self._unsaved = None
        view = await self._fresh_view() if self._fresh_view is not None else self._views()
        if view.version != self._seen_version:
            self._refused.clear()
            self._seen_version = view.version
        p = await plan_shared(
            view,
            self.scope,
            self._caps,
            t,
            lead_time=timedelta(seconds=self._config.lead_time_s),
            tag=self._store.box.tag,
        )
        self.last_plan = p
        held = {c.credential_id: c for c in await ops.list_credentials()}
        await self._apply(p, held, self._caps, ops)
        if self._events_due:
            await self._pull_events(view, ops)
        if self._unsaved is not None:
            err, self._unsaved = self._unsaved, None
            raise err  # the lock is in line; its sync state waits for space
        self.health = LockHealth(True, t, None, None, self.health.passes + 1)
        return p

    async def _keep_lock_time(self, t: datetime, caps: Capabilities, ops: LockOps) -> None:
        """Locks that enforce windows judge them on their own clock: set it after every
        (re)connect and hourly, but only from a clock the gateway trusts."""
        if not (caps.enforces_time_windows and caps.has_clock) or not self._clock_trusted():
            return
        if self._time_set_at is not None and t - self._time_set_at < LOCK_TIME_EVERY:
            return
        await ops.set_time(t)
        self._time_set_at = t
        self._log.info("%s: lock clock set", self.lock_id)

    async def _apply(
        self, p: Plan, held: dict[str, StoredCredential], caps: Capabilities, ops: LockOps
    ) -> None:
        # Thousands of credentials on a lock's first pass, and a driver may answer without
        # giving the loop back (the simulator does): the loops below share it in slices.
        slicer = Slicer()
        old = self._store.sync_states.for_lock(self.lock_id)
        force = self._force_put
        self._force_put = False
        to_delete = [cid for cid in held if cid not in p.desired]
        to_put = [
            c
            for mid, c in p.desired.items()
            if (force or held.get(mid) is None or held[mid].tag != c.tag)
            and self._refused.get(mid) != c.tag
        ]
        rows: dict[str, CredentialSyncState] = {}

        def row(
            mid: str,
            state: SyncStatus,
            *,
            tag: bytes | None = None,
            error_code: str | None = None,
            error: str | None = None,
        ) -> None:
            prev = old.get(mid)
            attempts = prev.attempts if prev else 0
            rows[mid] = CredentialSyncState(
                self.lock_id, mid, state, tag, error_code, error, attempts
            )

        for mid, when in p.scheduled.items():
            row(mid, SyncStatus.SCHEDULED, error=f"due {when.isoformat()}")
        for mid, (code, why) in p.waiting.items():
            row(mid, SyncStatus.SCHEDULED, error_code=code, error=why)
        for mid, (_, why) in p.shared.items():
            row(mid, SyncStatus.SHARED, error=why)
        for mid, (code, why) in p.rejected.items():
            row(mid, SyncStatus.FAILED, error_code=code, error=why)
        for mid, c in p.desired.items():
            await slicer.tick()
            prev = old.get(mid)
            if mid in held and held[mid].tag == c.tag and not force:
                row(mid, SyncStatus.APPLIED, tag=c.tag)
            elif self._refused.get(mid) == c.tag and prev is not None:
                rows[mid] = prev
            else:
                row(mid, SyncStatus.PENDING, tag=c.tag)
        # What the plan says of a credential being taken off (shared, scheduled, refused ...)
        # is its state once it is off.
        after_removal = {mid: rows[mid] for mid in to_delete if mid in rows}
        for mid in to_delete:
            row(mid, SyncStatus.REMOVING)
        _annotate(p, rows)
        await self._write(old, rows, slicer)
        if to_delete or to_put:
            self._log.info(
                "%s: applying %d removals and %d additions",
                self.lock_id,
                len(to_delete),
                len(to_put),
            )

        size = max(1, caps.max_batch)
        for batch in _chunks(to_delete, size):
            await slicer.tick()
            result = await ops.delete_credentials(batch)
            for mid, err in result.failures.items():
                rows[mid] = self._failure(rows.get(mid), mid, err, SyncStatus.REMOVING)
        put_failed: set[str] = set()
        for creds in _chunks(to_put, size):
            await slicer.tick()
            result = await ops.put_credentials(creds)
            self._log.debug("%s: put batch of %d", self.lock_id, len(creds))
            for mid, err in result.failures.items():
                put_failed.add(mid)
                rows[mid] = self._failure(rows.get(mid), mid, err, SyncStatus.FAILED)
                if not err.retryable:
                    self._refused[mid] = p.desired[mid].tag
            if result.failures:
                self._log.warning(
                    "%s: lock refused %d of %d credentials (%s)",
                    self.lock_id,
                    len(result.failures),
                    len(creds),
                    ", ".join(sorted({e.code for e in result.failures.values()})),
                )
        if to_delete or to_put:
            await self._read_back(p, to_put, to_delete, put_failed, rows, ops, slicer)
            for mid, planned in after_removal.items():
                rows.setdefault(mid, planned)
        gone = [mid for mid in old if mid not in rows]
        _annotate(p, rows)
        await self._write(old, rows, slicer)
        if gone:
            try:
                await self._store.sync_states.remove_many(self.lock_id, gone)
            except StoreFullError as err:
                self._unsaved = err
        if to_delete or to_put:
            counts = self._store.sync_states.counts(self.lock_id)
            self._log.info(
                "%s: pass done: %d applied, %d failed, %d scheduled",
                self.lock_id,
                counts["applied"],
                counts["failed"],
                counts["scheduled"],
            )

    async def _read_back(
        self,
        p: Plan,
        put: Sequence[Credential],
        deleted: Sequence[str],
        put_failed: set[str],
        rows: dict[str, CredentialSyncState],
        ops: LockOps,
        slicer: Slicer,
    ) -> None:
        after = {c.credential_id: c for c in await ops.list_credentials()}
        for c in put:
            await slicer.tick()
            if c.credential_id in put_failed:
                continue
            got = after.get(c.credential_id)
            if got is not None and got.tag == c.tag:
                rows[c.credential_id] = replace(
                    rows[c.credential_id], state=SyncStatus.APPLIED, error=None, error_code=None
                )
            else:
                rows[c.credential_id] = self._failure(
                    rows.get(c.credential_id),
                    c.credential_id,
                    DriverError("read-back after put does not match", lock_id=self.lock_id),
                    SyncStatus.FAILED,
                    code="readback_mismatch",
                )
        for mid in deleted:
            if mid in after:
                rows[mid] = self._failure(
                    rows.get(mid),
                    mid,
                    DriverError("still on the lock after delete", lock_id=self.lock_id),
                    SyncStatus.REMOVING,
                    code="readback_mismatch",
                )
            elif mid not in p.desired:
                rows.pop(mid, None)

    def _failure(
        self,
        prev: CredentialSyncState | None,
        mid: str,
        err: DriverError,
        state: SyncStatus,
        code: str | None = None,
    ) -> CredentialSyncState:
        return CredentialSyncState(
            self.lock_id,
            mid,
            state,
            tag=prev.tag if prev else None,
            error_code=code or err.code,
            error=err.message,
            attempts=(prev.attempts if prev else 0) + 1,
        )

    async def _write(
        self,
        old: dict[str, CredentialSyncState],
        rows: dict[str, CredentialSyncState],
        slicer: Slicer,
    ) -> None:
        changed = []
        for mid, r in rows.items():
            await slicer.tick()
            prev = old.get(mid)
            if prev is None or _bookkept(prev) != _bookkept(r):
                changed.append(r)
        if changed:
            try:
                await self._store.sync_states.write_many(changed, self._clock.now())
            except StoreFullError as err:
                self._unsaved = err  # go on: the lock matters more than its bookkeeping
                return
            for r in changed:
                old[r.method_id] = r

    async def _pull_events(self, view: CloudView, ops: LockOps) -> None:
        # Cleared before fetching: a hint that arrives meanwhile asks for another round.
        self._events_due = False
        if self._caps is not None and not self._caps.has_audit_log:
            return
        try:
            notes = self.last_plan.notes if self.last_plan else {}
            await collect_audit_log(
                ops,
                self._store.outbox,
                view.grant_of,
                self._log.logger,
                view.user_of,
                notes={m: why for m, (code, why) in notes.items() if code.startswith("duplicate_")},
            )
        except BaseException:
            self._events_due = True
            raise


def _annotate(p: Plan, rows: dict[str, CredentialSyncState]) -> None:
    """Put the plan's notes (a refused duplicate, Seam's own errors or warnings) on the rows of
    credentials that are on the lock or going on it; a real failure keeps its own error."""
    for mid, (code, why) in p.notes.items():
        r = rows.get(mid)
        if r is not None and r.state in (SyncStatus.APPLIED, SyncStatus.PENDING):
            rows[mid] = replace(r, error_code=code, error=why)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _bookkept(r: CredentialSyncState) -> tuple[object, ...]:
    """What of a sync state row is worth writing again when it changes."""
    return (r.state, r.tag, r.error_code, r.error, r.attempts)
