"""The reconnect policy as an object: capped exponential backoff with jitter."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReconnectPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    """Each delay is cut by up to this fraction at random, so locks that failed together (one
    adapter reset) do not all retry in the same instant."""
    random: Callable[[], float] = field(default=_random.random, repr=False)
    failures: int = 0

    def next_delay(self, *, auth_failure: bool = False) -> float:
        """The delay before the next try; authentication failures wait the maximum."""
        if auth_failure:
            base = self.maximum
        else:
            base = min(self.maximum, self.initial * self.factor ** min(self.failures, 32))
        self.failures += 1
        return base * (1.0 - self.jitter * self.random())

    def reset(self) -> None:
        self.failures = 0
