"""Whether the gateway may trust its own clock (a Pi has no RTC), and what time it is if not.

Witnesses: the kernel's NTP status (``adjtimex``: not ``TIME_ERROR``), the cloud's ``Date``
header (agreeing within ``max_cloud_skew_s``), a persisted floor (the latest time the gateway has
seen while trusted, which the clock must never fall behind), and the monotonic clock, against
which every step of the wall clock is seen. The clock is trusted when it is not behind the
floor, does not disagree with the cloud, has not stepped since a witness last vouched for it,
and either the kernel says it is synchronised or the cloud has recently confirmed it.

While it is not trusted, time runs on an estimate anchored to the monotonic clock
(:attr:`TimeState.HOLDOVER`: the last trusted reading plus the monotonic time since, so a step
of the wall clock either way moves no window boundary). Before the first trusted reading of a
run (:attr:`TimeState.UNSET`: a Pi booting without network) the estimate is the stored floor
plus the time since start: never later than the true time, so a code is never taken off early
(one that ended while the gateway was off stays until the clock is trusted). With no floor
either (a first start), the wall clock is all there is.

:class:`HonestClock` is that estimate as a :class:`~gateway.clock.Clock`: the reconcilers'
window timers, the validator and the sync loop run on it. :meth:`TimeTrust.trusted_now` is for
callers that must refuse to act on an untrusted clock at all.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from gateway.clock import TimeSource
from gateway.config import TimeConfig
from gateway.store.db import StoreFullError
from gateway.store.meta import Meta
from gateway.store.timefmt import from_db, to_db

log = logging.getLogger(__name__)

_TIME_ERROR = 5
CLOUD_CONFIRMATION_VALID_S = 6 * 3600.0
"""How long a cloud ``Date`` that agreed vouches for the clock (monotonic seconds)."""
SLICE_S = 30.0
""":class:`HonestClock` waits in slices this long, so a change of trust moves its timers."""
KERNEL_RECHECK_S = 0.1
"""While the clock is trusted and nothing is pending, the kernel's sync state is asked at most
this often (monotonic seconds): ``adjtimex`` costs one to three microseconds, a third of an
offline decision. A step of the wall clock is still seen on every reading (against the
monotonic clock, which costs nothing), and a full assessment always asks; the kernel itself
takes hours to call a clock that lost its NTP sources unsynchronised, and says so at once when
the time is set by hand (a step, seen on the very reading)."""


STEADY_SPAN_S = 1.0
"""While the clock is trusted and steady, a reading within this much monotonic time (at most
half ``max_jump_s``) of the last reading checked in full (the span's base) is taken as trusted
when its wall time lies in the span's bounds, two compares instead of the step's arithmetic:
from ``max_jump_s`` behind (less the span) to ``max_jump_s`` ahead of the base, and not behind
the floor. Whatever wall time that admits differs from the monotonic time since the base by at
most ``max_jump_s``, so no step of more than that passes; a reading outside the bounds is
checked in full against the base (a step is measured from the base then: steps within one span
add up). Every change of a witness goes through :meth:`TimeTrust._verdict_now`, which ends the
span."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # find_library forks ldconfig (about a millisecond): once per process is enough.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def kernel_clock_synchronised() -> bool | None:
    """The kernel's view (``adjtimex``); ``None`` when it cannot be asked (not Linux)."""
    libc = _libc()
    if libc is None:
        return None
    try:
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != _TIME_ERROR)


class TimeState(StrEnum):
    TRUSTED = "trusted"
    """The wall clock is right: windows run on it."""
    HOLDOVER = "holdover"
    """Not trusted any more: windows run on the last trusted reading plus monotonic time."""
    UNSET = "unset"
    """Not trusted yet in this run: windows run on the floor plus the time since start (or on
    the wall clock when there is no floor)."""


@dataclass(frozen=True, slots=True)
class TimeAssessment:
    trusted: bool
    reasons: tuple[str, ...]
    """Why not, when not trusted: ``behind_floor``, ``clock_jumped``, ``cloud_disagrees``,
    ``not_synchronised``."""
    state: TimeState = TimeState.TRUSTED
    now: datetime | None = None
    """The gateway's best estimate of the time (the wall clock when trusted)."""
    wall: datetime | None = None
    """What the wall clock says."""


class _Reading(NamedTuple):  # one per decision: a tuple costs a quarter of a dataclass
    wall: datetime
    mono: float


_NO_SPAN = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), -math.inf)

_new_reading = tuple.__new__
"""Builds a :class:`_Reading` without its Python-level ``__new__`` (on every decision)."""


class TimeTrust:
    def __init__(
        self,
        clock: TimeSource,
        meta: Meta,
        config: TimeConfig,
        kernel: Callable[[], bool | None] = kernel_clock_synchronised,
        span_s: float = STEADY_SPAN_S,
    ) -> None:
        self._clock = clock
        self._meta = meta
        self._config = config
        self._kernel = kernel
        self._cloud_skew: float | None = None
        self._cloud_seen: float | None = None
        """Monotonic time of the last cloud ``Date``."""
        self._floor = from_db(meta.get("time_floor"))
        start = self._read()
        self._floor_anchor = None if self._floor is None else _Reading(self._floor, start.mono)
        self._last = start
        """The previous reading checked in full (a reading inside a steady span is not kept,
        see :data:`STEADY_SPAN_S`): a step of the wall clock shows against it."""
        self._anchor: _Reading | None = None
        """The last trusted reading of this run."""
        self._readings = 0
        self._jumped_at: int | None = None
        """The reading that saw a step of the wall clock no witness has vouched for since."""
        self._kernel_was: bool | None = None
        self._kernel_synced_at: int | None = None
        """The reading that first saw the kernel synchronised after it was not."""
        self._kernel_asked = -math.inf
        """Monotonic time the kernel was last asked."""
        self._verdict: tuple[bool, tuple[str, ...]] | None = None
        self._steady = False
        """The last verdict was trusted with nothing pending (no step to vouch for): the next
        reading needs only the checks of :meth:`reading`. Every change of a witness
        goes through :meth:`_verdict_now`, which sets it again."""
        self._vouched_until = -math.inf
        """While :attr:`_steady`: the monotonic time until which the witness that made the
        verdict vouches (forever for a synchronised kernel, or when no kernel sync is required;
        :data:`CLOUD_CONFIRMATION_VALID_S` after the cloud's agreeing ``Date`` otherwise)."""
        self._max_jump_s = config.max_jump_s
        self._require_kernel = config.require_kernel_sync
        self._span_s = span_s
        self._span = _NO_SPAN
        """While :attr:`_steady`: the wall times a reading may have, and the monotonic time
        until which, to be taken as trusted without the step's arithmetic (see
        :data:`STEADY_SPAN_S`); :data:`_NO_SPAN` admits none."""

    def _read(self) -> _Reading:
        return _Reading(self._clock.now(), self._clock.monotonic())

    # --- witnesses ---------------------------------------------------------------------------
    def observe_cloud_time(self, server_time: datetime | None) -> None:
        if server_time is None:
            return
        r = self._observe()
        self._cloud_skew = (r.wall - server_time).total_seconds()
        self._cloud_seen = r.mono
        if self._jumped_at is not None and abs(self._cloud_skew) <= self._skew_limit:
            self._jumped_at = None  # the cloud vouches for the clock as it is now
        self.assess()

    @property
    def _skew_limit(self) -> float:
        # HTTP dates have one-second resolution: allow that on top of the configured skew.
        return self._config.max_cloud_skew_s + 1

    def _observe(self) -> _Reading:
        """Read both clocks; note a step of the wall clock, and what the kernel says."""
        r = _Reading(self._clock.now(), self._clock.monotonic())
        self._readings += 1
        last = self._last
        step = (r.wall - last.wall).total_seconds() - (r.mono - last.mono)
        if abs(step) > self._config.max_jump_s:
            self._jumped_at = self._readings
            if self._cloud_skew is not None:
                self._cloud_skew += step  # what the cloud said, carried to the new wall time
            log.warning(
                "the wall clock stepped %+.0fs (against the monotonic clock) to %s",
                step,
                r.wall.isoformat(),
            )
        self._last = r
        if self._config.require_kernel_sync:
            synced = self._kernel()
            self._kernel_asked = r.mono
            if synced is True and self._kernel_was is not True:
                self._kernel_synced_at = self._readings
            self._kernel_was = synced
            if (
                self._jumped_at is not None
                and synced is True
                and self._kernel_synced_at is not None
                and self._kernel_synced_at >= self._jumped_at
            ):
                self._jumped_at = None  # NTP stepped it and says it is synchronised now
        if self._jumped_at is not None and self._anchor is not None:
            carried = self._carried(self._anchor, r.mono)
            if abs((r.wall - carried).total_seconds()) <= self._config.max_jump_s:
                self._jumped_at = None  # stepped back to the time carried since it was trusted
        return r

    @staticmethod
    def _carried(anchor: _Reading, mono: float) -> datetime:
        return anchor.wall + timedelta(seconds=mono - anchor.mono)

    # --- the verdict -------------------------------------------------------------------------
    def assess(self) -> TimeAssessment:
        r, reasons = self._verdict_now()
        return self._assessment(r, reasons)

    def distrust(self) -> tuple[str, ...]:
        """Why the clock is not trusted now (empty when it is): for a caller that needs only
        the verdict."""
        return self.reading()[1]

    def _verdict_now(self) -> tuple[_Reading, tuple[str, ...]]:
        self._span = _NO_SPAN  # (a witness may have changed: the next span starts afresh)
        r = self._observe()
        reasons: tuple[str, ...] = ()
        if self._floor is not None and r.wall < self._floor:
            reasons += ("behind_floor",)
        if self._jumped_at is not None:
            reasons += ("clock_jumped",)
        skew_ok = self._cloud_skew is not None and abs(self._cloud_skew) <= self._skew_limit
        if self._cloud_skew is not None and not skew_ok:
            reasons += ("cloud_disagrees",)
        cloud_ok = (
            skew_ok
            and self._cloud_seen is not None
            and r.mono - self._cloud_seen <= CLOUD_CONFIRMATION_VALID_S
        )
        if self._config.require_kernel_sync and not cloud_ok and self._kernel_was is not True:
            reasons += ("not_synchronised",)
        if not reasons:
            self._anchor = r
        if self._verdict != (not reasons, reasons):
            self._log_change(self._assessment(r, reasons))
        self._steady = not reasons
        if not self._config.require_kernel_sync or self._kernel_was is True:
            self._vouched_until = math.inf
        else:  # trusted on the cloud's word (cloud_ok, so _cloud_seen is set)
            self._vouched_until = (self._cloud_seen or 0.0) + CLOUD_CONFIRMATION_VALID_S
        return r, reasons

    def _assessment(self, r: _Reading, reasons: tuple[str, ...]) -> TimeAssessment:
        if not reasons:
            return TimeAssessment(True, (), TimeState.TRUSTED, r.wall, r.wall)
        if self._anchor is not None:
            now = self._carried(self._anchor, r.mono)
            return TimeAssessment(False, reasons, TimeState.HOLDOVER, now, r.wall)
        if self._floor_anchor is not None:
            now = self._carried(self._floor_anchor, r.mono)
            return TimeAssessment(False, reasons, TimeState.UNSET, now, r.wall)
        return TimeAssessment(False, reasons, TimeState.UNSET, r.wall, r.wall)

    def _log_change(self, a: TimeAssessment) -> None:
        verdict = (a.trusted, a.reasons)
        if verdict == self._verdict:
            return
        first = self._verdict is None
        self._verdict = verdict
        if a.trusted:
            if not first:
                log.warning("the clock is trusted again: %s", _iso(a.wall))
        else:
            log.warning(
                "the clock is not trusted (%s): wall clock %s, windows run on %s (%s)",
                ", ".join(a.reasons),
                _iso(a.wall),
                _iso(a.now),
                a.state.value,
            )

    def reading(self) -> tuple[datetime, tuple[str, ...]]:
        """The honest time, and why the clock is not trusted at that time (empty when it is),
        from one reading of the clocks: :meth:`now` and :meth:`distrust` at once, what an
        offline decision needs.

        While :attr:`_steady` (every offline decision, so this is written out flat): read the
        clocks, and if the verdict stands (no step of the wall clock, not behind the floor,
        the witness's word still good, the kernel's answer unchanged when it is due again,
        :data:`KERNEL_RECHECK_S`) take the reading as trusted: first within the steady span's
        bounds (:data:`STEADY_SPAN_S`), else in full. Else everything is left to
        :meth:`_verdict_now`, which reads the clocks again (a step it then sees is measured
        from the same last reading)."""
        if self._steady:
            clock = self._clock
            wall, mono = clock.now(), clock.monotonic()
            lo, hi, until = self._span
            if (
                lo <= wall <= hi
                and mono <= until
                and (
                    not self._require_kernel
                    or mono - self._kernel_asked < KERNEL_RECHECK_S
                    or self._kernel_unchanged(mono)
                )
            ):
                return wall, ()
            last_wall, last_mono = self._last
            floor = self._floor
            if (
                abs((wall - last_wall).total_seconds() - (mono - last_mono)) <= self._max_jump_s
                and (floor is None or wall >= floor)
                and mono <= self._vouched_until
                and (
                    not self._require_kernel
                    or mono - self._kernel_asked < KERNEL_RECHECK_S
                    or self._kernel_unchanged(mono)
                )
            ):
                self._readings += 1
                self._last = self._anchor = _new_reading(_Reading, (wall, mono))
                self._span = self._span_from(wall, mono)
                return wall, ()
        r, reasons = self._verdict_now()
        now = self._assessment(r, reasons).now
        assert now is not None
        return now, reasons

    def _span_from(self, wall: datetime, mono: float) -> tuple[datetime, datetime, float]:
        """The span based on a reading just checked in full (see :data:`STEADY_SPAN_S`)."""
        jump = self._max_jump_s
        span = min(self._span_s, jump / 2)  # (bounds at least max_jump_s wide)
        if span <= 0:
            return _NO_SPAN
        lo = wall + timedelta(seconds=span - jump)
        if self._floor is not None and lo < self._floor:
            lo = self._floor
        return lo, wall + timedelta(seconds=jump), min(mono + span, self._vouched_until)

    def _kernel_unchanged(self, mono: float) -> bool:
        """Ask the kernel again: ``False`` if its answer changed (the full assessment notes
        the change, and asks again)."""
        if self._kernel() is not self._kernel_was:
            return False
        self._kernel_asked = mono
        return True

    def now(self) -> datetime:
        """The gateway's honest time: the wall clock when trusted, else the estimate."""
        return self.reading()[0]

    def trusted_now(self) -> datetime | None:
        """The wall time when the clock is trusted; ``None`` when it is not (refuse to act)."""
        a = self.assess()
        return a.now if a.trusted else None

    def raise_floor(self) -> None:
        """Persist the current time as the floor, when trusted (called now and then)."""
        now = self.trusted_now()
        if now is not None and (self._floor is None or now > self._floor):
            try:
                self._meta.set("time_floor", to_db(now) or "")
            except StoreFullError:
                return  # the next time, when there is room (the floor only protects)
            self._floor = now  # (trusted_now assessed in full: no span holds until the next)


def _iso(t: datetime | None) -> str:
    return "?" if t is None else t.isoformat(timespec="seconds")


class HonestClock:
    """The :class:`~gateway.clock.Clock` the gateway runs on: ``now`` is
    :meth:`TimeTrust.now`, and waits are measured on the monotonic clock, so a step of the wall
    clock neither fires a timer early nor holds it late."""

    def __init__(self, trust: TimeTrust, source: TimeSource) -> None:
        self.trust = trust
        self._source = source

    def now(self) -> datetime:
        return self.trust.now()

    def reading(self) -> tuple[datetime, tuple[str, ...]]:
        """:meth:`TimeTrust.reading`: the time and the trust's verdict from one reading."""
        return self.trust.reading()

    def monotonic(self) -> float:
        return self._source.monotonic()

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        while not wake.is_set():
            if deadline is None:
                await self._source.wait_monotonic(None, wake)
                return
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                return
            step = min(remaining, SLICE_S)
            await self._source.wait_monotonic(self._source.monotonic() + step, wake)
