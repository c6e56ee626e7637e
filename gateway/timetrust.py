"""Whether the gateway may trust its own clock (a Pi has no RTC).

Three witnesses: the kernel's NTP status (``adjtimex``: not ``TIME_ERROR``), the cloud's
``Date`` header (agreeing within ``max_cloud_skew_s``), and a persisted floor — the latest time
the gateway has ever seen while trusted, which the clock must never fall behind. The clock is
trusted when it is not behind the floor, does not disagree with the cloud, and either the kernel
says it is synchronised or the cloud has recently confirmed it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import Clock
from gateway.config import TimeConfig
from gateway.store.meta import Meta
from gateway.store.timefmt import from_db, to_db

log = logging.getLogger(__name__)

_TIME_ERROR = 5
CLOUD_CONFIRMATION_VALID = timedelta(hours=6)


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


@dataclass(frozen=True, slots=True)
class TimeAssessment:
    trusted: bool
    reasons: tuple[str, ...]
    """Why not, when not trusted: ``behind_floor``, ``cloud_disagrees``, ``not_synchronised``."""


class TimeTrust:
    def __init__(
        self,
        clock: Clock,
        meta: Meta,
        config: TimeConfig,
        kernel: Callable[[], bool | None] = kernel_clock_synchronised,
    ) -> None:
        self._clock = clock
        self._meta = meta
        self._config = config
        self._kernel = kernel
        self._cloud_skew: float | None = None
        self._cloud_seen_at: datetime | None = None

    def observe_cloud_time(self, server_time: datetime | None) -> None:
        if server_time is None:
            return
        now = self._clock.now()
        self._cloud_skew = (now - server_time).total_seconds()
        self._cloud_seen_at = now

    def assess(self) -> TimeAssessment:
        now = self._clock.now()
        reasons: list[str] = []
        floor = from_db(self._meta.get("time_floor"))
        if floor is not None and now < floor:
            reasons.append("behind_floor")
        # HTTP dates have one-second resolution: allow that on top of the configured skew.
        cloud_ok = (
            self._cloud_skew is not None
            and self._cloud_seen_at is not None
            and abs(self._cloud_skew) <= self._config.max_cloud_skew_s + 1
            and timedelta(0) <= now - self._cloud_seen_at <= CLOUD_CONFIRMATION_VALID
        )
        limit = self._config.max_cloud_skew_s + 1
        if self._cloud_skew is not None and abs(self._cloud_skew) > limit:
            reasons.append("cloud_disagrees")
        if self._config.require_kernel_sync and not cloud_ok and self._kernel() is not True:
            reasons.append("not_synchronised")
        return TimeAssessment(not reasons, tuple(reasons))

    def raise_floor(self) -> None:
        """Persist the current time as the floor, when trusted (called now and then)."""
        if self.assess().trusted:
            now = self._clock.now()
            floor = from_db(self._meta.get("time_floor"))
            if floor is None or now > floor:
                self._meta.set("time_floor", to_db(now) or "")
