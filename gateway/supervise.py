"""Living under a service manager: ready, watchdog, status, and a clean stop.

:func:`systemd_notify` runs as one of the gateway's tasks (registered in
:mod:`gateway.extensions` when ``$NOTIFY_SOCKET`` is set). It sends ``READY=1`` once the gateway
serves its locks, then every half watchdog interval a ``WATCHDOG=1`` — but only while

* the event loop turns (the ping is an ordinary task: a blocked loop sends nothing),
* the gateway's task group is alive (a failed task cancels the group, and this task with it),
* no lock has had one operation under way, without finishing a pass, for ``stall_after_s``
  (a driver call that hangs forever, ignoring its timeout, keeps the lock's handle busy;
  restarting is the cure).

When a lock hangs, it logs why, sends ``WATCHDOG=trigger`` and stops pinging, so systemd
restarts the gateway at once instead of waiting out the interval. A cloud that cannot be
reached never withholds the watchdog: the gateway is built to serve its locks without it.

:func:`announce_stopping` is the other end: ``STOPPING=1`` when :meth:`Gateway.serve
<gateway.daemon.Gateway.serve>` is asked to stop; it then waits (bounded, ``SHUTDOWN_GRACE_S``)
until no driver operation is in flight, and cancels the gateway's tasks.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.notify import SdNotifier, watchdog_timeout
from gateway.store.sync_state import SyncStatus

if TYPE_CHECKING:
    from gateway.daemon import Gateway
    from gateway.reconciler import LockHealth, LockReconciler

log = logging.getLogger(__name__)

STALL_AFTER_S = 600.0
"""One lock operation (or a run of them with no pass finished) this long means a hung driver."""
STATUS_EVERY_S = 30.0
"""How often STATUS= is refreshed when systemd asks for no watchdog."""


@dataclass(frozen=True, slots=True)
class Stall:
    lock_id: str
    seconds: float

    def __str__(self) -> str:
        return f"lock {self.lock_id}: operation hung for {self.seconds:.0f}s"


@dataclass(slots=True)
class _Busy:
    since: float
    health: LockHealth


class StallDetector:
    """Finds locks whose handle has been busy at every look for ``stall_after_s`` while
    their ``health`` did not change (a reconciler pass, finished or failed, replaces it)."""

    def __init__(
        self, stall_after_s: float = STALL_AFTER_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._after = stall_after_s
        self._monotonic = monotonic
        self._busy: dict[str, _Busy] = {}

    def check(self, locks: Mapping[str, LockReconciler]) -> list[Stall]:
        now = self._monotonic()
        stalls: list[Stall] = []
        for lock_id in self._busy.keys() - locks.keys():  # removed at runtime
            del self._busy[lock_id]
        for lock_id, reconciler in locks.items():
            seen = self._busy.get(lock_id)
            if not reconciler.handle.busy:
                self._busy.pop(lock_id, None)
            elif seen is None or seen.health is not reconciler.health:
                self._busy[lock_id] = _Busy(now, reconciler.health)
            elif now - seen.since >= self._after:
                stalls.append(Stall(lock_id, now - seen.since))
        return stalls


def describe(gw: Gateway) -> str:
    """One line for ``systemctl status``: the locks, their credentials, then the cloud."""
    locks = list(gw.locks.values())
    failing = [r.lock_id for r in locks if r.health.last_error_code is not None]
    text = f"{len(locks)} lock{'' if len(locks) == 1 else 's'}"
    if failing:
        shown = ", ".join(failing[:3]) + (", …" if len(failing) > 3 else "")
        text += f" ({len(failing)} failing: {shown})"
    try:
        totals: Counter[str] = Counter()
        for lock_id in gw.locks:
            totals.update(gw.store.sync_states.counts(lock_id))
    except sqlite3.Error as err:
        text += f", credentials unknown ({err})"
    else:
        text += f", {totals[SyncStatus.APPLIED]} credentials applied"
        for state in (SyncStatus.PENDING, SyncStatus.REMOVING, SyncStatus.FAILED):
            if totals[state]:
                text += f", {totals[state]} {state}"
    cloud = gw.sync_loop.health
    if cloud.reachable is None:
        text += "; cloud: no sync yet"
    elif cloud.reachable:
        text += "; cloud: in sync"
    else:
        text += f"; cloud: unreachable ({cloud.last_error_code or 'error'})"
    if cloud.last_sync_at is not None:
        text += f", last sync {cloud.last_sync_at:%Y-%m-%d %H:%M:%SZ}"
    trust = gw.trust.assess()
    if not trust.trusted:
        text += f"; clock untrusted ({', '.join(trust.reasons)}), running on {trust.state.value}"
    if gw.store.db.full_since is not None:
        text += f"; store_full since {gw.store.db.full_since:%Y-%m-%d %H:%M:%SZ} (free disk space)"
    return text


class Watchdog:
    """Tells systemd the gateway is ready, alive and how it is; see the module docstring."""

    def __init__(
        self,
        gw: Gateway,
        notifier: SdNotifier,
        timeout_s: float | None,
        *,
        stall_after_s: float = STALL_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gw = gw
        self._notifier = notifier
        self.timeout_s = timeout_s
        self._monotonic = monotonic
        self._stalls = StallDetector(stall_after_s, monotonic)
        self._status: str | None = None
        self._withheld = False

    @property
    def period_s(self) -> float:
        return self.timeout_s / 2 if self.timeout_s else STATUS_EVERY_S

    async def run(self) -> None:
        await self._gw.ready.wait()
        self.tick("READY=1")
        log.info(
            "told systemd we are ready%s",
            f"; watchdog every {self.period_s:.3g}s" if self.timeout_s else "",
        )
        period = self.period_s
        last = self._monotonic()
        while True:
            await asyncio.sleep(period)
            now = self._monotonic()
            late = now - last - period
            last = now
            if late > period / 2:  # a quarter of the watchdog timeout lost
                log.warning("the event loop was blocked for about %.1fs", late)
            self.tick()

    def tick(self, *extra: str) -> None:
        """Look at the gateway once and send what systemd should hear now."""
        stalls = self._stalls.check(self._gw.locks)
        fields = list(extra)
        if stalls:
            status = "watchdog withheld: " + "; ".join(str(s) for s in stalls)
        else:
            status = describe(self._gw)
        if status != self._status:
            fields.append(f"STATUS={status}")
            self._status = status
        if stalls:
            if not self._withheld:
                for stall in stalls:
                    log.error(
                        "%s: an operation on this lock has not finished for %.0fs; "
                        "withholding the watchdog so that the gateway restarts",
                        stall.lock_id,
                        stall.seconds,
                        extra={"lock": stall.lock_id},
                    )
                if self.timeout_s:
                    fields.append("WATCHDOG=trigger")
                self._withheld = True
        else:
            if self._withheld:
                log.warning("the hung lock operation finished; feeding the watchdog again")
                self._withheld = False
            if self.timeout_s:
                fields.append("WATCHDOG=1")
        if fields:
            self._notifier.notify(*fields)


async def systemd_notify(gw: Gateway) -> None:
    """The gateway task that talks to systemd (does nothing without ``$NOTIFY_SOCKET``)."""
    notifier = SdNotifier.from_environment()
    if not notifier.enabled:
        return
    await Watchdog(gw, notifier, watchdog_timeout()).run()


def announce_stopping(notifier: SdNotifier | None = None) -> Callable[[], None]:
    """What :meth:`Gateway.serve` calls when asked to stop: ``STOPPING=1`` to systemd."""
    sd = notifier or SdNotifier.from_environment()

    def stopping() -> None:
        sd.notify("STOPPING=1", "STATUS=stopping: letting lock operations finish")

    return stopping
