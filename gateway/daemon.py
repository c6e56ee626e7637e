"""The gateway, assembled: store, cloud client and sync, one reconciler per lock, the validator.

Resources are entered in one :class:`contextlib.AsyncExitStack`; long-running loops run in one
:class:`asyncio.TaskGroup`, each task named. :class:`Gateway` is an async context manager, so a
test, the demo and the ``lockgate run`` command all start it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from drivers.base import (
    AccessAnswer,
    AccessRequest,
    CredentialKind,
    DriverContext,
    LockDriver,
    SecurityAlert,
)
from drivers.registry import DriverRegistry
from gateway.clock import Clock, FlowingClock, SystemTime, TimeSource
from gateway.cloud.client import CloudClient
from gateway.config import GatewayConfig, LockConfig
from gateway.events import AccessEvent
from gateway.handle import LockHandle, OpTimeouts
from gateway.lockout import LockoutPolicy
from gateway.mobilekeys import proof_check_for
from gateway.planner import LockScope
from gateway.reconciler import LockReconciler
from gateway.store.db import StoreFullError
from gateway.store.lock_map import LockRecord
from gateway.store.store import Store
from gateway.store_keeper import StoreKeeper
from gateway.sync import CloudSync, Scope
from gateway.sync_loop import SyncLoop
from gateway.timetrust import HonestClock, TimeTrust, kernel_clock_synchronised
from gateway.validator import Decision, Validator
from gateway.views import ViewCache

log = logging.getLogger(__name__)

FLOOR_EVERY = timedelta(minutes=10)


def scope_of(lock: LockConfig) -> LockScope:
    return LockScope(
        lock.id,
        frozenset(lock.space_ids),
        frozenset(lock.acs_entrance_ids),
        frozenset(lock.device_ids),
    )


def _scope_sets(scope: LockScope) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    return scope.space_ids, scope.entrance_ids, scope.device_ids


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        registry: DriverRegistry,
        *,
        clock: TimeSource | None = None,
        kernel_synchronised: Callable[[], bool | None] = kernel_clock_synchronised,
        extra_tasks: list[Callable[[Gateway], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.wall_clock: TimeSource = clock or SystemTime()
        self.clock: Clock = self.wall_clock
        """The time everything runs on: :class:`HonestClock` once the store is open."""
        self._kernel = kernel_synchronised
        self._extra = extra_tasks or []
        self._stack = contextlib.AsyncExitStack()
        self._runner: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.locks: dict[str, LockReconciler] = {}
        self._lock_tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[object]] = set()

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        self._runner = asyncio.create_task(self._run(), name="lockgate-main")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background)
        await self._stack.aclose()

    async def wait(self) -> None:
        """Run until the gateway's tasks end (they end only by failing or being cancelled)."""
        assert self._runner is not None
        await self._runner

    async def _open(self) -> None:
        cfg = self.config
        self.store = Store.open(cfg.store.path, cfg.store.key)
        self._stack.callback(self.store.close)
        self.views = ViewCache(self.store)
        self.trust = TimeTrust(self.wall_clock, self.store.meta, cfg.time, self._kernel)
        self.clock = HonestClock(self.trust, self.wall_clock)
        # A clean stop keeps the floor fresh for a next start without a trusted clock.
        self._stack.callback(self.trust.raise_floor)
        self.scopes = {lock.id: scope_of(lock) for lock in cfg.locks}
        try:
            dropped = self.store.lock_map.replace(
                [
                    LockRecord(lock.id, lock.driver.type, *_scope_sets(self.scopes[lock.id]))
                    for lock in cfg.locks
                ],
                self.clock.now(),
            )
        except StoreFullError:
            dropped = []  # the next start records the lock list; serve what the store holds
        for lock_id in dropped:
            log.warning("lock %s is no longer configured: its sync state was cleared", lock_id)
        self.validator = Validator(
            self.store,
            self.views.current,
            self.scopes,
            self.clock,
            self.trust,
            cfg.time,
            LockoutPolicy(self.store.lockouts, cfg.validator),
            proof_check=proof_check_for(self.store),
        )
        self.client = CloudClient(
            str(cfg.cloud.endpoint),
            cfg.cloud.api_key.read_text(),
            timeout_s=cfg.cloud.request_timeout_s,
            max_retries=cfg.cloud.max_retries,
        )
        await self._stack.enter_async_context(self.client)
        self.cloud_sync = CloudSync(
            self.client,
            self.store,
            Scope.of(cfg),
            self.clock,
            page_size=cfg.cloud.page_size,
            on_change=self._cloud_changed,
        )
        self.sync_loop = SyncLoop(self.cloud_sync, self.client, self.clock, cfg.cloud, self.trust)
        self.keeper = StoreKeeper(
            self.store.db,
            self.store.meta,
            [self.validator.flush, self.store.mobile_key_challenges.flush],
            self._store_writable,
            self.clock,
        )
        for lock in cfg.locks:
            await self._add_lock(lock)

    async def _add_lock(self, lock: LockConfig) -> None:
        cls = self.registry.get(lock.driver.type)
        holder: list[LockReconciler] = []
        ctx = DriverContext(
            now=self.clock.now,
            keystore=self.store.keystore(lock.id),
            decide=self._decider(lock.id),
            events_waiting=lambda: holder[0].events_waiting() if holder else None,
            clock=FlowingClock(self.clock),
            alert=self._security_alert,
        )
        driver: LockDriver = cls(lock.id, lock.driver, ctx)
        rc = self.config.reconcile
        handle = LockHandle(
            driver, OpTimeouts(connect_s=rc.connect_timeout_s, op_s=rc.op_timeout_s)
        )
        await self._stack.enter_async_context(handle)
        reconciler = LockReconciler(
            handle,
            self.scopes[lock.id],
            self.store,
            self.views.current,
            self.clock,
            self.config.reconcile,
            clock_trusted=lambda: self.trust.assess().trusted,
            fresh_view=self.views.refresh,
        )
        holder.append(reconciler)
        self.locks[lock.id] = reconciler

    def _security_alert(self, alert: SecurityAlert) -> None:
        """A driver saw signs of an attack: a WARNING, and an event on the outbox (MQTT
        ``<root>/events``) for the operator. Never raises into the driver."""
        log.warning(
            "lock %s: security alert %s: %s", alert.lock_id, alert.kind, alert.detail,
            extra={"lock": alert.lock_id},
        )
        try:
            self.store.outbox.add([AccessEvent.security_alert(alert, self.clock.now())])
        except Exception:  # the store's trouble is reported where it happens
            log.exception("lock %s: could not record a security alert", alert.lock_id)

    def _decider(self, lock_id: str) -> Callable[[AccessRequest], Awaitable[AccessAnswer]]:
        async def decide(request: AccessRequest) -> AccessAnswer:
            d = self.validator.decide(request.kind, request.secret, lock_id, proof=request.proof)
            return AccessAnswer(d.allow, d.reason, d.access_method_id)

        return decide

    def _cloud_changed(self) -> None:
        # The new view is built now, in slices, so that decisions find it ready.
        task = asyncio.get_running_loop().create_task(self.views.refresh(), name="view-refresh")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        for reconciler in self.locks.values():
            reconciler.wake()

    def _store_writable(self) -> None:
        self._cloud_changed()
        self.sync_loop.poke()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.views.refresh(), name="view-first")
            tg.create_task(self.sync_loop.run(), name="cloud-sync")
            for lock_id, reconciler in self.locks.items():
                self._lock_tasks[lock_id] = tg.create_task(reconciler.run(), name=f"lock:{lock_id}")
            tg.create_task(self._keep_floor(), name="time-floor")
            tg.create_task(self.keeper.run(), name="store-keeper")
            for extra in self._extra:
                tg.create_task(extra(self), name=getattr(extra, "__name__", "extra"))
            self.ready.set()
            log.info("gateway %s serving %d locks", self.config.gateway_id, len(self.locks))

    async def _keep_floor(self) -> None:
        never = asyncio.Event()
        while True:
            self.trust.raise_floor()
            await self.clock.wait_until(self.clock.now() + FLOOR_EVERY, never)

    # --- what the management plane and tests use ---------------------------------------------
    def decide(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        *,
        dry_run: bool,
        tested_by: str | None = None,
    ) -> Decision:
        return self.validator.decide(kind, secret, lock_id, dry_run=dry_run, tested_by=tested_by)

    async def commission(
        self, lock_id: str, pairing_secret: str, *, timeout_s: float | None = None
    ) -> None:
        """Pair a lock with this gateway (its out-of-band secret), then bring it in line.

        Through the lock's handle, which does not connect first: a fresh lock refuses any
        session until it is commissioned."""
        reconciler = self.locks[lock_id]
        await reconciler.handle.commission(pairing_secret, timeout_s)
        log.info("lock %s commissioned", lock_id, extra={"lock": lock_id})
        reconciler.repush()

    async def remove_lock(self, lock_id: str) -> None:
        """Stop serving a lock until the next start: its reconciler stops, its link closes,
        its sync state and link keys are forgotten. (Remove it from the config to make it
        permanent.)"""
        reconciler = self.locks.pop(lock_id)
        task = self._lock_tasks.pop(lock_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # its end, without taking its CancelledError for ours
        await reconciler.handle.close()
        self.scopes.pop(lock_id, None)
        self.store.sync_states.remove_lock(lock_id)
        self.store.keystore(lock_id).clear()
        self.store.lock_map.remove(lock_id)
        log.warning("lock %s removed at runtime", lock_id, extra={"lock": lock_id})
