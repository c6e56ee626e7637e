"""The gateway, assembled: store, cloud client and sync, one handle and reconciler per lock,
the validator.

Its whole lifetime reads in one place::

    async with Gateway(config, registry) as gw:   # resources, in one AsyncExitStack
        await gw.serve(stop)                      # every loop, in one TaskGroup, until stop

Entering opens the store, the cloud client and each lock's handle (its driver started);
:meth:`Gateway.serve` runs the cloud sync, one reconciler per lock, the time floor and the
extensions (MQTT plane, systemd) as named tasks, each :func:`~gateway.tasks.supervised` so that
one part's bug never ends the others; when ``stop`` is set it lets lock operations in flight
finish (bounded) and cancels the tasks. Leaving closes the drivers and the store. The
management plane sees the gateway through :class:`~gateway.managed.ManagedGateway` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
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
from gateway import heap
from gateway.clock import Clock, FlowingClock, SystemTime, TimeSource
from gateway.cloud.client import CloudClient
from gateway.config import ConfigError, GatewayConfig, LockConfig
from gateway.cooperative import settle
from gateway.events import AccessEvent
from gateway.handle import LockHandle, OpTimeouts, quiesced
from gateway.lockout import LockoutPolicy
from gateway.managed import ManagedGateway
from gateway.mobilekeys import proof_check_for
from gateway.planner import LockScope
from gateway.reconciler import LockReconciler
from gateway.secrets import SecretError
from gateway.store.db import StoreFullError
from gateway.store.lock_map import LockRecord
from gateway.store.store import Store
from gateway.store_keeper import StoreKeeper
from gateway.sync import CloudSync, Scope
from gateway.sync_loop import SyncLoop
from gateway.tasks import supervised
from gateway.timetrust import HonestClock, TimeTrust, kernel_clock_synchronised
from gateway.validator import Decision, Validator
from gateway.views import ViewCache

log = logging.getLogger(__name__)

FLOOR_EVERY = timedelta(minutes=10)
SHUTDOWN_GRACE_S = 20.0
FATAL: tuple[type[Exception], ...] = (SecretError, ConfigError)
"""Configuration faults a part finds when it starts (a secret file readable by others): a
restart cannot cure them, so they end the gateway instead of being retried."""
"""How long a stop waits for lock operations in flight; the unit's TimeoutStopSec= is larger."""


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
        self.ready = asyncio.Event()
        """Set while :meth:`serve` runs every task."""
        self.locks: dict[str, LockReconciler] = {}
        self._lock_tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self._alerts: set[asyncio.Task[None]] = set()
        """Security alerts on their way into the outbox: awaited, never cancelled, on exit."""

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        heap.one_arena()  # before the store's and the sync's threads: see gateway.heap
        await self._stack.__aenter__()
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.alerts_recorded()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background)
        await self._stack.aclose()

    async def serve(
        self,
        stop: asyncio.Event | None = None,
        *,
        grace_s: float = SHUTDOWN_GRACE_S,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        """Run every loop of the gateway until ``stop`` is set (forever without one).

        On ``stop``: ``on_stop()`` (``STOPPING=1`` under systemd), then lock operations in
        flight get ``grace_s`` to finish, then every task is cancelled and this returns.
        """
        stop = stop or asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as tg:

            def start(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
                task = tg.create_task(supervised(name, run, fatal=FATAL), name=name)
                tasks.append(task)
                return task

            settle()  # what start-up built (modules, config, store) is never walked again
            self._refresh_view()
            start("cloud-sync", self.sync_loop.run)
            for lock_id, reconciler in self.locks.items():
                self._lock_tasks[lock_id] = start(f"lock:{lock_id}", reconciler.run)
            start("time-floor", self._keep_floor)
            start("store-keeper", self.keeper.run)
            for extra in self._extra:
                start(getattr(extra, "__name__", "extra"), functools.partial(extra, self))
            self.ready.set()
            log.info("gateway %s serving %d locks", self.config.gateway_id, len(self.locks))
            try:
                await stop.wait()
                log.info("stopping")
                on_stop()
                async with quiesced({i: r.handle for i, r in self.locks.items()}, grace_s):
                    for task in tasks:
                        task.cancel()
                    await asyncio.wait(tasks)
            finally:
                self.ready.clear()
        log.info("gateway stopped")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Self]:
        """:meth:`serve` in the background for the block (tests): leaving it cancels the
        tasks at once, the way a crash would, and raises what ended them if they failed."""
        task = asyncio.create_task(self.serve(), name="lockgate-serve")
        ready = asyncio.create_task(self.ready.wait(), name="lockgate-ready")
        try:
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # why it could not start
            yield self
        finally:
            ready.cancel()
            task.cancel()
            await asyncio.wait({task})  # its end, without taking its CancelledError for ours
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure

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
            async with self.store.db.turn():
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
            views=self.views,
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
        event = AccessEvent.security_alert(alert, self.clock.now())
        task = asyncio.get_running_loop().create_task(
            self._record_alert(event), name="security-alert"
        )
        self._alerts.add(task)
        task.add_done_callback(self._alerts.discard)

    async def alerts_recorded(self) -> None:
        """Returns once every security alert reported so far is in the outbox (or its failure
        logged)."""
        if self._alerts:
            await asyncio.wait(self._alerts)

    async def _record_alert(self, event: AccessEvent) -> None:
        """The alert's event into the outbox, in this task's turn: while a bulk write (a
        first full sync) holds the database, this task waits for it, not the event loop."""
        try:
            await self.store.db.write(lambda conn: self.store.outbox.add([event]))
        except Exception:  # the store's trouble is reported where it happens
            log.exception("lock %s: could not record a security alert", event.lock_id)

    def _decider(self, lock_id: str) -> Callable[[AccessRequest], Awaitable[AccessAnswer]]:
        async def decide(request: AccessRequest) -> AccessAnswer:
            d = await self.validator.decide_durably(
                request.kind, request.secret, lock_id, proof=request.proof
            )
            # A mobile key's challenge is claimed in the decision and written in its own
            # turn: the door is answered once it is durable (a restart still refuses a replay).
            await self.store.mobile_key_challenges.settle()
            return AccessAnswer(d.allow, d.reason, d.access_method_id)

        return decide

    def _refresh_view(self) -> None:
        """Build the current data version's view now, in slices, so decisions find it ready
        (and then the validator's index of retired secrets of that version)."""
        task = asyncio.get_running_loop().create_task(self._refresh_indexes(), name="view-refresh")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_indexes(self) -> None:
        await self.views.refresh()
        await self.validator.refresh()

    def _cloud_changed(self) -> None:
        self._refresh_view()
        for reconciler in self.locks.values():
            reconciler.wake()

    def _store_writable(self) -> None:
        self._cloud_changed()
        self.sync_loop.poke()

    async def _keep_floor(self) -> None:
        never = asyncio.Event()
        while True:
            async with self.store.db.turn():  # a full sync moving its rows in: wait for it here
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
        its sync state, link keys and audit log are forgotten (the next log read under its id
        is a new one unless its origin proves it the same: gateway/log_epochs.py). (Remove it
        from the config to make it permanent.)"""
        reconciler = self.locks.pop(lock_id)
        task = self._lock_tasks.pop(lock_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # its end, without taking its CancelledError for ours
        await reconciler.handle.close()
        self.scopes.pop(lock_id, None)
        # In this task's turn (a first full sync's move may hold the database), and at once.
        async with self.store.db.turn():
            with self.store.db.transaction():
                self.store.sync_states.remove_lock(lock_id)
                self.store.keystore(lock_id).clear()
                self.store.lock_map.remove(lock_id)
        log.warning("lock %s removed at runtime", lock_id, extra={"lock": lock_id})


def _satisfies_managed(gw: Gateway) -> ManagedGateway:
    return gw  # mypy checks here that the management plane's interface holds
