"""Keep one lock in line with what the grants say right now.

A :class:`LockReconciler` wakes when the cloud data changed, when the next window opens or
closes, when a retry is due, or when the lock has new audit-log entries. Each pass: plan the
desired set at *t*, read what the lock holds, delete what must go and put what is missing or
changed (batches as large as the lock allows), read back and compare content tags, record the
per-credential sync state, and pull the lock's audit log into the outbox. Everything is
idempotent: a pass after a crash finds what already happened on the lock and does not repeat it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from drivers.backoff import Backoff
from drivers.base import Capabilities, Credential, LockDriver, StoredCredential
from drivers.errors import DriverError
from gateway.audit_log import collect_audit_log
from gateway.clock import Clock
from gateway.config import ReconcileConfig
from gateway.planner import CloudView, LockScope, Plan, plan
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
        driver: LockDriver,
        scope: LockScope,
        store: Store,
        views: Callable[[], CloudView],
        clock: Clock,
        config: ReconcileConfig,
        *,
        backoff: Backoff | None = None,
        clock_trusted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.driver = driver
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
        self.exclusive = asyncio.Lock()
        """Held around every driver operation: one operation at a time per lock. Commands
        (lock, unlock, status, commission) take it too."""
        self._caps: Capabilities | None = None
        self._refused: dict[str, bytes] = {}
        self._force_put = False
        self._creds_due = True
        self._events_due = True
        self._seen_version = -1
        self._clock_trusted = clock_trusted
        self._time_set_at: datetime | None = None
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
        poll = timedelta(seconds=self._config.event_poll_s)
        while True:
            await self._clock.wait_until(next_wake, self._wake)
            self._wake.clear()
            t = self._clock.now()
            if next_wake is None or t >= next_wake:
                self._creds_due = True
            try:
                async with self.exclusive:
                    p = await self._pass(t)
            except DriverError as err:
                await self._failed(err)
                retry = t + timedelta(seconds=self._backoff.next_delay())
                planned = self.last_plan.next_change if self.last_plan else None
                next_wake = min(x for x in (retry, planned) if x is not None)
            else:
                self._backoff.reset()
                next_wake = min(x for x in (p.next_change, t + poll) if x is not None)
            async with self._changed:
                self._changed.notify_all()

    async def _failed(self, err: DriverError) -> None:
        first = self.health.last_error_code is None
        self._log.log(
            logging.WARNING if first else logging.DEBUG,
            "%s: pass failed (%s): %s",
            self.lock_id,
            err.code,
            err.message,
        )
        self.health = replace(
            self.health,
            connected=self.driver.connected,
            last_error=err.message,
            last_error_code=err.code,
        )
        if not err.retryable:
            self._backoff.give_up_for_now()

    async def _pass(self, t: datetime) -> Plan:
        if not self.driver.connected:
            self._caps = None
            self._creds_due = self._events_due = True
            await self.driver.connect()
        if self._caps is None:
            self._caps = await self.driver.capabilities()
            self._time_set_at = None
        await self._keep_lock_time(t, self._caps)
        if not self._creds_due and self.last_plan is not None:
            if self._events_due:
                await self._pull_events(self._views())
            return self.last_plan
        # Cleared before the view is read, not after the pass: a wake() during the pass (the
        # cloud changed while we talked to the lock) must ask for another one, not be lost.
        self._creds_due = False
        try:
            return await self._credentials_pass(t)
        except BaseException:
            self._creds_due = True
            raise

    async def _credentials_pass(self, t: datetime) -> Plan:
        assert self._caps is not None
        view = self._views()
        if view.version != self._seen_version:
            self._refused.clear()
            self._seen_version = view.version
        p = plan(
            view,
            self.scope,
            self._caps,
            t,
            lead_time=timedelta(seconds=self._config.lead_time_s),
            tag=self._store.box.tag,
        )
        self.last_plan = p
        held = {c.credential_id: c for c in await self.driver.list_credentials()}
        await self._apply(p, held, self._caps)
        if self._events_due:
            await self._pull_events(view)
        self.health = LockHealth(True, t, None, None, self.health.passes + 1)
        return p

    async def _keep_lock_time(self, t: datetime, caps: Capabilities) -> None:
        """Locks that enforce windows judge them on their own clock: set it after every
        (re)connect and hourly, but only from a clock the gateway trusts."""
        if not caps.enforces_time_windows or not self._clock_trusted():
            return
        if self._time_set_at is not None and t - self._time_set_at < LOCK_TIME_EVERY:
            return
        await self.driver.set_time(t)
        self._time_set_at = t
        self._log.info("%s: lock clock set", self.lock_id)

    async def _apply(self, p: Plan, held: dict[str, StoredCredential], caps: Capabilities) -> None:
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
        for mid, (code, why) in p.rejected.items():
            row(mid, SyncStatus.FAILED, error_code=code, error=why)
        for mid, c in p.desired.items():
            prev = old.get(mid)
            if mid in held and held[mid].tag == c.tag and not force:
                row(mid, SyncStatus.APPLIED, tag=c.tag)
            elif self._refused.get(mid) == c.tag and prev is not None:
                rows[mid] = prev
            else:
                row(mid, SyncStatus.PENDING, tag=c.tag)
        for mid in to_delete:
            row(mid, SyncStatus.REMOVING)
        self._write(old, rows)
        if to_delete or to_put:
            self._log.info(
                "%s: applying %d removals and %d additions",
                self.lock_id,
                len(to_delete),
                len(to_put),
            )

        size = max(1, caps.max_batch)
        for batch in _chunks(to_delete, size):
            result = await self.driver.delete_credentials(batch)
            for mid, err in result.failures.items():
                rows[mid] = self._failure(rows.get(mid), mid, err, SyncStatus.REMOVING)
        put_failed: set[str] = set()
        for creds in _chunks(to_put, size):
            result = await self.driver.put_credentials(creds)
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
            await self._read_back(p, to_put, to_delete, put_failed, rows)
        gone = [mid for mid in old if mid not in rows]
        self._write(old, rows)
        if gone:
            self._store.sync_states.remove(self.lock_id, gone)
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
    ) -> None:
        after = {c.credential_id: c for c in await self.driver.list_credentials()}
        for c in put:
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

    def _write(
        self, old: dict[str, CredentialSyncState], rows: dict[str, CredentialSyncState]
    ) -> None:
        changed = [
            r
            for mid, r in rows.items()
            if (prev := old.get(mid)) is None
            or (prev.state, prev.tag, prev.error_code, prev.error, prev.attempts)
            != (r.state, r.tag, r.error_code, r.error, r.attempts)
        ]
        if changed:
            self._store.sync_states.write(changed, self._clock.now())
            for r in changed:
                old[r.method_id] = r

    async def _pull_events(self, view: CloudView) -> None:
        # Cleared before fetching: a hint that arrives meanwhile asks for another round.
        self._events_due = False
        try:
            await collect_audit_log(
                self.driver, self._store.outbox, view.grant_of, self._log.logger
            )
        except BaseException:
            self._events_due = True
            raise


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
