"""One OSDP control panel per serial port: libosdp on its own threads, bridged to asyncio.

Threads, and who may touch what:

* libosdp's state machine runs in a **refresh thread** (every ``refresh_interval``), under the
  panel's lock; its event callback runs there and only hands the event to the event loop with
  ``call_soon_threadsafe``.
* every other libosdp call (submit a command, read the online and secure-channel bitmasks,
  disable or enable a reader) runs in the panel's **single worker thread**, under the same lock,
  awaited from the loop; so the loop never blocks on libosdp, and commands for one port leave in
  the order they were given.
* everything else (which readers exist, their health, decisions) lives on the **event loop**.

libosdp 3.2.9 takes the whole reader list when the panel is made, so readers that join or leave
(drivers starting one after another) make the panel rebuild itself, once they have settled.

Secure channel is enforced for every reader (``FLAG_ENFORCE_SECURE``): without it libosdp keeps
a reader with a wrong key online in plaintext, and its cards get through.

Health is watched by polling the bitmasks (libosdp reports no key mismatch to Python). A reader
that libosdp has given up on waits 300 s in libosdp before it is tried again; the panel disables
and re-enables it instead, with a capped backoff, so a reader plugged back is online within
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import osdp
import osdp_sys

from drivers.backoff import Backoff
from drivers.errors import DriverConfigError, DriverError, LockOfflineError, ProtocolError
from drivers.osdp.channel import ReplyWatch, SerialChannel

log = logging.getLogger(__name__)
T = TypeVar("T")

FLAG_ENFORCE_SECURE: int = osdp_sys.FLAG_ENFORCE_SECURE
FLAG_ENABLE_NOTIFICATION: int = osdp_sys.FLAG_ENABLE_NOTIFICATION
EVENT_NOTIFICATION: int = osdp_sys.EVENT_NOTIFICATION
NOTIFICATION_SC_STATUS: int = osdp_sys.EVENT_NOTIFICATION_SC_STATUS


class ReaderHealth(enum.StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    """Answering, secure channel up with our key."""
    OFFLINE = "offline"
    KEY_REJECTED = "key_rejected"
    """Answering, but its key is not the one we hold (or it is in install mode)."""
    PROVISIONING = "provisioning"


@dataclass(eq=False, slots=True)
class ReaderSlot:
    """One reader on the panel, as its driver registered it."""

    address: int
    key: bytes = field(repr=False)
    on_event: Callable[[dict[str, Any]], None]
    on_health: Callable[[ReaderHealth], None]
    revive: Backoff
    provisioning: bool = False
    """Built without enforcement so libosdp can key it from the default key (SCBK-D)."""
    keyed_from_default: bool = False
    """Provisioning saw a secure channel on the default key (so libosdp sent our key)."""
    keyed: asyncio.Event = field(default_factory=asyncio.Event)
    """Provisioning saw a secure channel on our key."""
    health: ReaderHealth = ReaderHealth.CONNECTING
    since: float = 0.0
    """Monotonic time the current connection attempt began (build or revive)."""
    next_revive: float = 0.0


class _Runner:
    """libosdp's control panel object and the thread that refreshes it."""

    def __init__(self, ctx: Any, interval: float) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, name="osdp-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                self.ctx.refresh()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class Panel:
    """The control panel of one port; readers attach and detach; see the module docstring."""

    def __init__(
        self,
        path: str,
        baud: int,
        *,
        refresh_interval: float = 0.02,
        watch_interval: float = 0.1,
        settle: float = 0.05,
        offline_grace: float = 3.0,
        key_rejected_after: float = 0.5,
        channel: SerialChannel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.baud = baud
        self.refresh_interval = refresh_interval
        self.watch_interval = watch_interval
        self.settle = settle
        self.offline_grace = offline_grace
        self.key_rejected_after = key_rejected_after
        self._clock = clock
        self.watch = ReplyWatch(clock)
        self.channel = channel or SerialChannel(path, baud, self.watch)
        self.channel.watch = self.watch
        self._slots: dict[int, ReaderSlot] = {}
        self._built: list[ReaderSlot] = []
        self._runner: _Runner | None = None
        self._generation = 0
        self._rebuilt = asyncio.Condition()
        self._health_changed = asyncio.Condition()
        self._dirty = False
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osdp-cp")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.revivals = 0

    # --- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name=f"osdp-panel:{self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._in_worker(self._teardown)
        await self._in_worker(self.channel.close)
        self._executor.shutdown(wait=False)

    def attach(self, slot: ReaderSlot) -> None:
        if slot.address in self._slots:
            raise DriverConfigError(
                f"two readers at address {slot.address} on {self.path}"
            )
        self._slots[slot.address] = slot
        self._changed()

    def detach(self, address: int) -> None:
        if self._slots.pop(address, None) is not None:
            self._changed()

    @property
    def empty(self) -> bool:
        return not self._slots

    def health(self, address: int) -> ReaderHealth:
        slot = self._slots.get(address)
        return slot.health if slot else ReaderHealth.OFFLINE

    async def rebuild(self) -> None:
        """Rebuild the panel now (a reader's key or mode changed) and wait until it is."""
        async with self._rebuilt:
            generation = self._generation
            self._changed()
            await self._rebuilt.wait_for(lambda: self._generation != generation)

    def _changed(self) -> None:
        self._dirty = True
        self._wake.set()

    # --- commands ----------------------------------------------------------------------------
    async def submit(self, address: int, command: dict[str, Any]) -> None:
        """Queue ``command`` for the reader at ``address`` (sent at its next poll)."""
        try:
            idx = next(i for i, s in enumerate(self._built) if s.address == address)
        except StopIteration:
            raise LockOfflineError(f"reader {address} is not on the panel yet") from None
        runner = self._runner

        def call() -> bool:
            if runner is None or runner is not self._runner:
                return False
            with runner.lock:
                return bool(runner.ctx.submit_command(idx, command))

        try:
            ok = await self._in_worker(call)
        except (SystemError, TypeError, ValueError, KeyError) as err:
            # libosdp raises SystemError on a wrongly shaped command dict: a bug of ours
            raise ProtocolError(f"libosdp refused the command: {type(err).__name__}") from err
        if not ok:
            raise LockOfflineError(f"reader {address} is not online; command not queued")

    # --- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = Backoff(0.5, 10.0)
        while True:
            delay = self.watch_interval
            try:
                if self._dirty:
                    await asyncio.sleep(self.settle)  # let the other readers of the port join
                    self._dirty = False
                    await self._rebuild()
                await self._watch()
                failures.reset()
            except DriverError as err:
                delay = failures.next_delay()
                log.warning("OSDP panel %s: %s; again in %.1f s", self.path, err, delay)
            except Exception:  # a bug must not stop the readers' health watch
                delay = failures.next_delay()
                log.exception("OSDP panel %s failed; again in %.1f s", self.path, delay)
                self._dirty = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def _rebuild(self) -> None:
        slots = sorted(self._slots.values(), key=lambda s: s.address)
        await self._in_worker(self._teardown)
        self._built = []
        self._generation += 1
        if slots:
            generation = self._generation
            self._runner = await self._in_worker(lambda: self._build(slots, generation))
            self._built = slots
            now = self._clock()
            for slot in slots:
                slot.since = now
                slot.next_revive = now + self.offline_grace
            log.info(
                "OSDP panel %s: %d reader(s) at %s baud (addresses %s)",
                self.path,
                len(slots),
                self.baud,
                ", ".join(str(s.address) for s in slots),
            )
        async with self._rebuilt:
            self._rebuilt.notify_all()

    def _build(self, slots: list[ReaderSlot], generation: int) -> _Runner:
        infos = []
        for slot in slots:
            # Provisioning: no enforcement, so libosdp falls back to the default key and, once
            # on it, sends ours (KEYSET); notifications tell which key the channel is on.
            flags = [FLAG_ENABLE_NOTIFICATION] if slot.provisioning else [FLAG_ENFORCE_SECURE]
            info = osdp.PDInfo(
                slot.address, self.channel, scbk=slot.key, name=f"reader-{slot.address}",
                flags=flags,
            )
            infos.append(info.get())
        osdp_sys.set_loglevel(osdp.LogLevel.Error)
        ctx = osdp_sys.ControlPanel(infos)
        ctx.set_event_callback(
            lambda pd, event: self._from_libosdp(generation, pd, event)
        )
        runner = _Runner(ctx, self.refresh_interval)
        runner.start()
        return runner

    def _teardown(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

    def _from_libosdp(self, generation: int, pd: int, event: dict[str, Any]) -> int:
        """libosdp's event callback, on its refresh thread: hand over to the loop, return."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._dispatch, generation, pd, event)
        return 0

    def _dispatch(self, generation: int, pd: int, event: dict[str, Any]) -> None:
        if generation != self._generation or not 0 <= pd < len(self._built):
            return  # from a panel that has been rebuilt since
        slot = self._built[pd]
        if slot.provisioning:
            self._provisioning_event(slot, event)
            return  # not yet keyed: nothing it reports is trusted
        try:
            slot.on_event(event)
        except Exception:
            log.exception("OSDP reader %d: event handler failed", slot.address)

    # --- provisioning -------------------------------------------------------------------------
    async def provision(self, address: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Key a reader in install mode with its site key; ``True`` when it took the key from
        the default key, ``False`` when its channel came up on our key without that (it had
        the key already). Raises :class:`TimeoutError` when neither happened in time."""
        slot = self._slots[address]
        slot.provisioning, slot.keyed_from_default = True, False
        slot.keyed.clear()
        try:
            await self.rebuild()
            async with asyncio.timeout(timeout):
                await slot.keyed.wait()
            return slot.keyed_from_default
        finally:
            slot.provisioning = False
            slot.health = ReaderHealth.CONNECTING
            await self.rebuild()

    def _provisioning_event(self, slot: ReaderSlot, event: dict[str, Any]) -> None:
        if event.get("event") != EVENT_NOTIFICATION or event.get("type") != NOTIFICATION_SC_STATUS:
            return
        active, default_key = bool(event.get("arg0")), bool(event.get("arg1"))
        if active and default_key:
            slot.keyed_from_default = True
        elif active:
            slot.keyed.set()

    # --- health ------------------------------------------------------------------------------
    async def _watch(self) -> None:
        runner = self._runner
        if runner is None:
            return

        def read() -> tuple[int, int]:
            with runner.lock:
                return int(runner.ctx.status()), int(runner.ctx.sc_status())

        online_mask, sc_mask = await self._in_worker(read)
        now = self._clock()
        for idx, slot in enumerate(list(self._built)):
            if runner is not self._runner:
                return
            online = bool(online_mask >> idx & 1)
            secure = bool(sc_mask >> idx & 1)
            new = self._judge(slot, online, secure, now)
            if new in (ReaderHealth.OFFLINE, ReaderHealth.KEY_REJECTED) and now >= slot.next_revive:
                await self._revive(runner, idx, slot, auth=new is ReaderHealth.KEY_REJECTED)
            if new is not slot.health:
                slot.health = new
                log.log(
                    logging.INFO if new is ReaderHealth.ONLINE else logging.WARNING,
                    "OSDP reader %d on %s: %s",
                    slot.address,
                    self.path,
                    new.value,
                )
                try:
                    slot.on_health(new)
                except Exception:
                    log.exception("OSDP reader %d: health handler failed", slot.address)
                async with self._health_changed:
                    self._health_changed.notify_all()

    async def wait_health(self, address: int, wanted: ReaderHealth) -> None:
        """Return once the reader at ``address`` is ``wanted`` (bound it with a timeout)."""
        async with self._health_changed:
            await self._health_changed.wait_for(lambda: self.health(address) is wanted)

    def _judge(self, slot: ReaderSlot, online: bool, secure: bool, now: float) -> ReaderHealth:
        if slot.provisioning:
            return ReaderHealth.PROVISIONING
        if online and secure:
            slot.revive.reset()
            return ReaderHealth.ONLINE
        ccrypt = self.watch.last_ccrypt.get(slot.address, -math.inf)
        rmac = self.watch.last_rmac_i.get(slot.address, -math.inf)
        if ccrypt >= slot.since and rmac < ccrypt and now - ccrypt >= self.key_rejected_after:
            return ReaderHealth.KEY_REJECTED
        if now - slot.since < self.offline_grace:
            return slot.health  # a (re)start in progress: no blip for a rebuild of the panel
        if slot.health is ReaderHealth.KEY_REJECTED:
            return slot.health  # no new challenge answered since the last revival
        return ReaderHealth.OFFLINE

    async def _revive(self, runner: _Runner, idx: int, slot: ReaderSlot, *, auth: bool) -> None:
        """libosdp would wait 300 s: disable the reader, wait until that took, enable it."""
        delay = slot.revive.next_delay(auth_failure=auth)

        def call(name: str) -> bool:
            with runner.lock:
                return bool(getattr(runner.ctx, name)(idx))

        await self._in_worker(lambda: call("disable_pd"))
        for _ in range(50):
            if not await self._in_worker(lambda: call("is_pd_enabled")):
                break
            await asyncio.sleep(0.02)
        enabled = await self._in_worker(lambda: call("enable_pd"))
        now = self._clock()
        slot.since = now
        slot.next_revive = now + delay
        self.revivals += 1
        log.debug(
            "OSDP reader %d: re-enabled (%s); next try in %.1f s", slot.address, enabled, delay
        )

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
