"""Retry and reconnect delays as an object: capped exponential backoff with jitter.

One policy for every retry loop: the serial bus and poller, the BLE connection, and (through
``gateway``) the cloud client, the sync loop, the reconciler and the MQTT plane.

Each failure multiplies the ceiling by ``factor``, from ``initial`` up to ``maximum``; each delay
is cut by up to ``jitter`` of the ceiling at random, so many locks (or many gateways) that failed
together do not retry in the same instant. Authentication failures do not climb: they wait the
maximum, hammering a peer that refused our key helps no one.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field

_MAX_EXPONENT = 64
"""Keeps ``factor ** failures`` a finite float; the ceiling reaches ``maximum`` long before."""


@dataclass(slots=True)
class Backoff:
    initial: float
    """The ceiling of the first delay."""
    maximum: float
    factor: float = 2.0
    jitter: float = 0.5
    """Each delay is cut by up to this fraction of its ceiling, at random."""
    random: Callable[[], float] = field(default=_random.random, repr=False)
    """Draws in [0, 1): inject a fixed one to test exact delays."""
    failures: int = 0
    """Failures since the last :meth:`reset`."""

    def next_delay(self, *, auth_failure: bool = False) -> float:
        """The delay before the next try; an authentication failure waits the maximum (jittered)."""
        if auth_failure:
            ceiling = self.maximum
        else:
            exponent = min(self.failures, _MAX_EXPONENT)
            ceiling = min(self.maximum, self.initial * self.factor**exponent)
        self.failures += 1
        return ceiling * (1.0 - self.jitter * self.random())

    def give_up_for_now(self) -> float:
        """Count a failure and wait exactly the maximum, without jitter (a refused key: one
        gateway against one server, nobody to spread out from)."""
        self.failures += 1
        return self.maximum

    def reset(self) -> None:
        self.failures = 0
