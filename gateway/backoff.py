"""Retry policy as an object: capped exponential backoff with full jitter.

Each failure doubles the ceiling up to ``maximum``; the delay is drawn between half the ceiling
and the ceiling, so many gateways (or many locks) that failed together do not retry together.
Authentication failures go straight to the maximum (:meth:`Backoff.give_up_for_now`): hammering
a server that refused our key helps no one.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("need 0 < minimum <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self.factor = factor
        self._rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * self.factor**self.failures)
        self.failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def give_up_for_now(self) -> float:
        self.failures += 1
        return self.maximum

    def reset(self) -> None:
        self.failures = 0
