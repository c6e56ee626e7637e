"""The link to one lock over time: connect on demand, drop it when idle.

Following yalexs-ble: the driver never owns the radio (the adapter's scanner feeds it
advertisements); it connects only when an operation needs the lock, runs one operation at a
time, keeps a connected lock alive with polls below the lock's own idle timeout (announced in
its device-info record), drops the link after ``idle_disconnect`` without operations or as soon
as another lock waits for one of the adapter's connection slots, and reconnects with capped,
jittered backoff that a fresh advertisement of the lock cuts short.

Several addresses may advertise as the lock: a clone of its advertisement (anyone can copy
the five bytes of device id it broadcasts, or the whole device-info record), or the lock
itself under a new private address. The connection ranks them: the address where an
operation last authenticated first, then any address that has not failed to prove itself,
newest first. A device whose device-info record names another device id is passed over for
:data:`IMPOSTOR_HOLD` seconds (the lock is not: the next sighting is tried at once), and one
that connects but cannot complete an authenticated exchange goes to the back of the line.
Both raise a rogue-device alert (:class:`~drivers.base.SecurityAlert`). Nothing a device
without the lock's keys can do makes the gateway stop trying the lock.

A link to the address where the lock last authenticated takes the services from the adapter's
cache of its attribute table instead of discovering them again (the device-info record is
still read and its device id checked); a link there that fails before it authenticates makes
the next one discover afresh.

Timers (idle, keep-alive, reconnect delays) run on the injected
:class:`~drivers.base.WaitClock`, and a deadline counts as come when the clock's wait for it
ends (whatever ``now()`` says after a step of the wall clock); radio timeouts (scan, connect,
GATT) and the hold-off after a failed access-request poll run on the event loop's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from drivers.backoff import Backoff
from drivers.base import SecurityAlert, WaitClock
from drivers.ble.adapter import BleAdapter
from drivers.ble.carrier import GattCarrier
from drivers.ble.errors import ImpostorError
from drivers.ble.link import GattLink, LinkStats
from drivers.ble.options import BleOptions
from drivers.ble.profile import AdvertFlag
from drivers.ble.scanner import Sighting
from drivers.clock import sleep
from drivers.errors import (
    DriverError,
    LockAuthError,
    LockBusyError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
)
from drivers.lockproto.client import UnverifiedRefusalError

log = logging.getLogger(__name__)

IMPOSTOR_HOLD = 600.0
"""Seconds an address that turned out to be another device is not connected to again."""

MAX_REMEMBERED = 256
"""Doubtful addresses kept (a rogue may rotate random addresses)."""

YIELD_GRACE = 0.02
"""Seconds without an operation before a link gives its slot to a lock that waits: a burst
of operations (one reconciler pass) keeps its link, the next lock gets the slot right after."""


class Link(Protocol):
    """One open GATT link, as the connection policy sees it (:class:`GattLink` for the
    Lockgate profile; another lock family's driver brings its own, e.g. the Nuki driver)."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def idle_timeout_s(self) -> float:
        """The lock drops a silent link after this long (0: unknown or never)."""
        ...

    async def close(self) -> None: ...


LinkOpener = Callable[[BleAdapter, Sighting, Callable[[], None]], Awaitable[Link]]
"""Connects to the sighted lock and sets the link up; the callback reports a lost link."""


@dataclass(slots=True)
class ConnectionStats:
    connects: int = 0
    connect_failures: int = 0
    lost: int = 0
    idle_disconnects: int = 0
    yielded: int = 0
    keepalives: int = 0
    attention_polls: int = 0
    impostors: int = 0
    """Connections to a device that was not the lock (another device id, or no
    authenticated exchange)."""


class LockConnection:
    def __init__(
        self,
        lock_id: str,
        options: BleOptions,
        carrier: GattCarrier | None,
        *,
        clock: WaitClock,
        policy: Backoff,
        keepalive: Callable[[], Awaitable[None]],
        attention: Callable[[], Awaitable[None]],
        on_advert: Callable[[Sighting], None],
        on_status: Callable[[AdvertFlag], None],
        authenticated: Callable[[], bool] = lambda: False,
        on_alert: Callable[[SecurityAlert], None] = lambda alert: None,
        opener: LinkOpener | None = None,
    ) -> None:
        self.lock_id = lock_id
        self.options = options
        self.carrier = carrier
        self.policy = policy
        self.stats = ConnectionStats()
        self.link_stats = LinkStats()
        self.expect_device_id: bytes | None = options.device_id_bytes
        self._clock = clock
        self._keepalive_op = keepalive
        self._attention_op = attention
        self._on_advert = on_advert
        self._on_status = on_status
        self._adapter: BleAdapter | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._link: Link | None = None
        self._opener: LinkOpener = opener or self._open_gatt_link
        self._link_gen = 0
        self._op_lock = asyncio.Lock()
        self._busy = False
        self._release = False
        self._attention = False
        self._attention_hold: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._advert_seen = asyncio.Event()
        self._last_use: datetime | None = None
        self._last_traffic: datetime | None = None
        self._keepalive_every = options.keepalive
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._changed = asyncio.Event()
        self._op_end = 0.0
        self._yield_timer: asyncio.TimerHandle | None = None
        self._authenticated = authenticated
        self._on_alert = on_alert
        self._link_address: str | None = None
        self._link_proven = False
        self._verified: str | None = None
        """The address where an operation last authenticated: tried first."""
        self._impostors: dict[str, float] = {}
        """Address -> event-loop time until which it is passed over (another device)."""
        self._alerted: dict[str, float] = {}
        self._doubtful: dict[str, None] = {}
        self._gatt_cached_for: str | None = None
        """The address whose cached attribute table a new link may use: the lock
        authenticated there, and no link there failed since before authenticating."""
        """Addresses that connected but never proved themselves (oldest first): tried last."""

    # --- lifetime ----------------------------------------------------------------------------
    def start(self, adapter: BleAdapter) -> None:
        self._adapter = adapter
        self._unsubscribe = adapter.scanner.subscribe(self.matches, self._advertised)
        self._task = asyncio.create_task(self._housekeeper(), name=f"ble:{self.lock_id}")

    async def close(self) -> None:
        for timer in (self._yield_timer, self._attention_hold):
            if timer is not None:
                timer.cancel()
        self._yield_timer = self._attention_hold = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._op_lock:
            await self.drop_link("closing")
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def adapter(self) -> BleAdapter:
        if self._adapter is None:
            raise LockOfflineError("BLE driver not started", lock_id=self.lock_id)
        return self._adapter

    # --- what the adapter sees ---------------------------------------------------------------
    def matches(self, sighting: Sighting) -> bool:
        if self.options.address is not None:
            return sighting.address.upper() == self.options.address.upper()
        dev = self.expect_device_id
        advert = sighting.advert
        if dev is None or advert is None or advert.short_id != dev[: len(advert.short_id)]:
            return False
        until = self._impostors.get(sighting.address)
        if until is None:
            return True
        if asyncio.get_running_loop().time() < until:
            return False
        del self._impostors[sighting.address]
        return True

    def _rank(self, sighting: Sighting) -> int:
        if sighting.address == self._verified:
            return 2
        return 0 if sighting.address in self._doubtful else 1

    def _prune(self) -> None:
        """Bound what a rogue rotating its address can make us remember."""
        now = asyncio.get_running_loop().time()
        for table in (self._impostors, self._alerted):
            for address in [a for a, until in table.items() if until <= now]:
                del table[address]
        while len(self._doubtful) > MAX_REMEMBERED:
            del self._doubtful[next(iter(self._doubtful))]

    def _alert(self, address: str, detail: str) -> None:
        """Count every time; tell the operator once per address per :data:`IMPOSTOR_HOLD`."""
        self.stats.impostors += 1
        now = asyncio.get_running_loop().time()
        if self._alerted.get(address, now) > now:
            return
        self._alerted[address] = now + IMPOSTOR_HOLD
        log.warning("%s: rogue device at %s: %s", self.lock_id, address, detail)
        self._on_alert(SecurityAlert(self.lock_id, "rogue_device", detail, address))

    def _impostor(self, err: ImpostorError) -> None:
        """Another device answered: pass its address over for a while, not the lock."""
        detail = f"advertises as the lock but is device {err.device_id.hex()}"
        if self.options.address is None:  # matched by device id: other sightings exist
            hold = asyncio.get_running_loop().time() + IMPOSTOR_HOLD
            self._impostors[err.address] = hold
            self._prune()
            self._doubtful.pop(err.address, None)
            if self._verified == err.address:
                self._verified = None
        if self._gatt_cached_for == err.address:
            self._gatt_cached_for = None
        self._alert(err.address, detail)

    def _settle(self, err: BaseException | None) -> None:
        """After an operation on a link: did the device at its address prove to be the lock?"""
        address = self._link_address
        if address is None:
            return
        if self._authenticated():
            self._link_proven = True
            self._verified = address
            self._gatt_cached_for = address
            self._doubtful.pop(address, None)
            return
        if err is not None and not self._link_proven and self._gatt_cached_for == address:
            self._gatt_cached_for = None  # whatever went wrong, the next link discovers afresh
        if (
            isinstance(err, UnverifiedRefusalError | LockTimeoutError)
            and not self._link_proven
            and address not in self._doubtful
        ):
            # connected, then nothing authenticated: a clone of the whole advertisement and
            # device-info record, or a lock that lost its keys. Try it last from now on.
            self._doubtful[address] = None
            self._prune()
            if isinstance(err, UnverifiedRefusalError):
                self._alert(address, f"connected but could not authenticate ({err.message})")

    def _advertised(self, sighting: Sighting) -> None:
        self._advert_seen.set()
        self._on_advert(sighting)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after a change of the link (bound it yourself)."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def _bump(self) -> None:
        self._changed.set()
        self._wake.set()

    def attention(self) -> None:
        """The lock asks for the gateway (an access request): connect and poll soon."""
        self._attention = True
        self._wake.set()

    # --- SlotHolder ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def release_requested(self) -> None:
        self._release = True
        self._wake.set()

    # --- the link ------------------------------------------------------------------------------
    @property
    def link_up(self) -> bool:
        return self._link is not None and self._link.is_connected

    @contextlib.asynccontextmanager
    async def operation(self, *, user: bool = True, connect: bool = True) -> AsyncIterator[None]:
        """Hold the lock's only operation slot, with the link up for the whole of it."""
        async with self._op_lock:
            self._busy = True
            try:
                if connect:
                    await self._ensure_link()
                elif not self.link_up:
                    raise LockOfflineError("not connected", lock_id=self.lock_id)
                try:
                    yield
                except LockLinkError as err:
                    # a timed-out or broken exchange: start the next one on a fresh link
                    self._settle(err)
                    await self.drop_link(f"after {err.code}")
                    raise
                except BaseException as err:
                    self._settle(err)
                    raise
                self._settle(None)
            finally:
                self._busy = False
                now = self._clock.now()
                self._last_traffic = now
                if user:
                    self._last_use = now
                self._op_end = asyncio.get_running_loop().time()
                if self.link_up and self._adapter is not None and self._adapter.slots.contended:
                    self._release = True
                self._bump()

    async def _ensure_link(self) -> None:
        if self.link_up:
            return
        if self._link is not None:
            await self.drop_link("link gone")
        last: DriverError | None = None
        for attempt in range(self.options.connect_attempts):
            if attempt:
                delay = self.policy.next_delay()
                self._advert_seen.clear()
                await sleep(self._clock, delay, self._advert_seen)
            try:
                await self._connect_once()
            except ImpostorError as err:
                self.stats.connect_failures += 1
                last = err
                self._impostor(err)
                continue  # the next sighting at once: the lock itself may be right there
            except (LockAuthError, ProtocolError):
                self.stats.connect_failures += 1
                self.policy.next_delay(auth_failure=True)
                raise
            except DriverError as err:
                self.stats.connect_failures += 1
                last = err
                log.log(
                    logging.DEBUG if self._failing else logging.WARNING,
                    "%s: connect failed (%s): %s",
                    self.lock_id,
                    err.code,
                    err.message,
                )
                self._failing = True
            else:
                if self._failing:
                    log.info("%s: connected again", self.lock_id)
                self._failing = False
                self.policy.reset()
                return
        assert last is not None
        raise last

    async def _connect_once(self) -> None:
        adapter = self.adapter
        opts = self.options
        try:
            sighting = await adapter.scanner.wait_for(
                self.matches, within=opts.scan_timeout, fresh=opts.advert_fresh, rank=self._rank
            )
        except TimeoutError as err:
            raise LockOfflineError(
                f"not advertising (waited {opts.scan_timeout:g} s)", lock_id=self.lock_id
            ) from err
        try:
            async with asyncio.timeout(opts.scan_timeout + opts.connect_timeout):
                await adapter.slots.acquire(self)
        except TimeoutError as err:
            raise LockBusyError(
                "no free BLE connection on the adapter", lock_id=self.lock_id
            ) from err
        gen = self._link_gen + 1
        try:
            async with adapter.connect_lock:
                link = await self._opener(adapter, sighting, lambda: self._lost(gen))
        except BaseException as err:
            adapter.slots.release(self)
            if isinstance(err, LockOfflineError):
                adapter.scanner.forget(sighting.address)
            raise
        self._link_gen = gen
        self._link = link
        self._link_address = sighting.address
        self._link_proven = False
        self._release = False
        self.stats.connects += 1
        idle = link.idle_timeout_s
        self._keepalive_every = min(opts.keepalive, idle / 2) if idle else opts.keepalive
        self._last_use = self._last_traffic = self._clock.now()
        self._bump()

    async def _open_gatt_link(
        self, adapter: BleAdapter, sighting: Sighting, on_lost: Callable[[], None]
    ) -> GattLink:
        """The Lockgate profile's link (:mod:`drivers.ble.link`), its carrier attached."""
        assert self.carrier is not None
        opts = self.options
        link = await GattLink.open(
            adapter,
            sighting.device,
            lock_id=self.lock_id,
            expect_device_id=self.expect_device_id,
            connect_timeout=opts.connect_timeout,
            gatt_timeout=opts.gatt_timeout,
            pair=opts.pair,
            on_segment=self.carrier.on_segment,
            on_lost=on_lost,
            on_status=self._on_status,
            stats=self.link_stats,
            cached_services=sighting.address == self._gatt_cached_for,
        )
        self.carrier.attach(link)
        log.debug(
            "%s: connected to %s (segments of %d bytes)",
            self.lock_id,
            sighting.address,
            link.segment_size,
        )
        return link

    def _lost(self, gen: int) -> None:
        """bleak's disconnected callback: the lock or the air dropped the link."""
        if gen != self._link_gen or self._link is None:
            return
        self.stats.lost += 1
        log.debug("%s: link lost", self.lock_id)
        self._link = None
        if self.carrier is not None:
            self.carrier.detach()
        if self._adapter is not None:
            self._adapter.slots.release(self)
        self._bump()

    async def disconnect(self) -> None:
        """Drop the link once no operation runs (the next operation connects again)."""
        async with self._op_lock:
            await self.drop_link("disconnect requested")

    async def drop_link(self, why: str) -> None:
        link = self._link
        if link is None:
            return
        self._link = None
        self._link_gen += 1
        if self.carrier is not None:
            self.carrier.detach()
        log.debug("%s: disconnecting (%s)", self.lock_id, why)
        try:
            await link.close()
        finally:
            if self._adapter is not None:
                self._adapter.slots.release(self)
            self._release = False
            self._bump()

    # --- housekeeping --------------------------------------------------------------------------
    def _next_deadline(self) -> datetime | None:
        """When the housekeeper must act next; ``None``: only when woken (an operation that
        ends, a link that drops, a slot hand-off timer, an access request, the end of the
        hold-off after a failed one)."""
        if self._busy or self._yield_timer is not None:
            return None
        if not self.link_up or self._last_use is None or self._last_traffic is None:
            return None
        idle = self._last_use + timedelta(seconds=self.options.idle_disconnect)
        keep = self._last_traffic + timedelta(seconds=self._keepalive_every)
        return min(idle, keep)

    async def _housekeeper(self) -> None:
        acted_on: datetime | None = None
        while True:
            deadline = self._next_deadline()
            if deadline is not None and deadline == acted_on:
                deadline = None  # tended to it and it did not move: wait to be woken
            await self._clock.wait_until(deadline, self._wake)
            woken = self._wake.is_set()
            self._wake.clear()
            now = self._clock.now()
            # The clock says when a deadline has come: a wait that ends unwoken ended at its
            # deadline even if now() disagrees (a FlowingClock's durations flow while a fake
            # clock stands still; a wall clock stepped back by NTP must not stall timers).
            due = deadline is not None and (deadline <= now or not woken)
            acted_on = deadline if due else None
            try:
                await self._tend(max(now, deadline) if due and deadline is not None else now)
            except DriverError as err:
                log.debug("%s: housekeeping: %s (%s)", self.lock_id, err.message, err.code)
            self._changed.set()

    def _yield_due(self) -> None:
        self._yield_timer = None
        self._wake.set()

    def _attention_due(self) -> None:
        self._attention_hold = None
        self._wake.set()

    async def _tend(self, now: datetime) -> None:
        """Act on what is due at ``now`` (the clock's time, or the deadline it waited for)."""
        if self._attention and self._attention_hold is None:
            self._attention = False
            self.stats.attention_polls += 1
            try:
                await self._attention_op()
            except DriverError:
                # the flag stays in the lock's adverts: do not answer each one at once. The
                # hold-off is a short radio back-off on the loop's monotonic time: a step of
                # the wall clock must not postpone the lock's access request past its timeout.
                loop = asyncio.get_running_loop()
                self._attention_hold = loop.call_later(
                    self.policy.next_delay(), self._attention_due
                )
                raise
        if not self.link_up or self._busy:
            return
        if self._release or (self._adapter is not None and self._adapter.slots.contended):
            loop = asyncio.get_running_loop()
            wait = self._op_end + YIELD_GRACE - loop.time()
            if wait > 0:
                if self._yield_timer is not None:
                    self._yield_timer.cancel()
                self._yield_timer = loop.call_later(wait, self._yield_due)
                return
            async with self._op_lock:
                if self.link_up and not self._busy:
                    self.stats.yielded += 1
                    await self.drop_link("another lock waits for a connection slot")
            return
        assert self._last_use is not None
        assert self._last_traffic is not None
        if now >= self._last_use + timedelta(seconds=self.options.idle_disconnect):
            async with self._op_lock:
                if self.link_up and not self._busy:
                    self.stats.idle_disconnects += 1
                    await self.drop_link("idle")
        elif now >= self._last_traffic + timedelta(seconds=self._keepalive_every):
            self.stats.keepalives += 1
            async with self.operation(user=False, connect=False):
                await self._keepalive_op()
