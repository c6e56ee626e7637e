"""A manual clock to inject as ``now`` (tests move time instead of sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Callable returning a time that only changes when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start if start is not None else datetime(2025, 6, 16, 16, 54, 17, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment
