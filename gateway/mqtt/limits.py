"""Rate limits of the management plane: a token bucket per key, on monotonic time.

Used for what an attacker with a valid role could farm (an operator's ``test_credential``
dry runs) and for what costs a lock battery (live ``lock_state`` reads).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """At most ``burst`` at once per key, refilled at ``per_minute`` a minute."""

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst if burst is not None else max(1, int(per_minute))
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}

    def _refill(self, key: str) -> _Bucket:
        now = self._monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            gained = (now - bucket.at) * self.per_minute / 60.0
            bucket.tokens = min(float(self.burst), bucket.tokens + gained)
            bucket.at = now
        return bucket

    def wait_s(self, key: str) -> float:
        """0 when ``key`` may go now, else the seconds until it may."""
        bucket = self._refill(key)
        if bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) * 60.0 / self.per_minute

    def take(self, key: str) -> None:
        """Spend one (after :meth:`wait_s` said 0)."""
        self._refill(key).tokens -= 1.0
