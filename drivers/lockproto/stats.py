"""Counting what a layer refused (bad frames, segments, datagrams), by reason.

Each layer that drops input it cannot use keeps its own stats on top of :class:`RefusalStats`,
so a fuzzer, a noisy line or an attacker shows up in numbers rather than in a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RefusalStats:
    refused: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())
