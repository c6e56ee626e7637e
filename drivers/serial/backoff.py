"""Reconnect and retry delays: capped exponential backoff with jitter, as an object."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class BackoffPolicy:
    initial: float = 0.05
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.25
    """Each delay is cut by up to this fraction at random, so locks and buses spread out."""
    random: Callable[[], float] = field(default=_random.random, repr=False)
    attempt: int = 0

    def next_delay(self, *, auth_failure: bool = False) -> float:
        """The delay before the next try. Authentication failures wait the maximum."""
        if auth_failure:
            base = self.maximum
        else:
            base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base * (1.0 - self.jitter * self.random())

    def reset(self) -> None:
        self.attempt = 0
