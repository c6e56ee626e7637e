"""Timestamps in the database: ISO 8601 UTC text, which sorts as time does."""

from __future__ import annotations

from datetime import UTC, datetime

_ISO_YEARS = 1000
"""From this year on ``isoformat`` writes what ``strftime("%Y...")`` does (four digits); the
years before it keep the ``strftime`` form they were always stored in."""


def to_db(t: datetime | None) -> str | None:
    if t is None:
        return None
    t = t.astimezone(UTC)
    if t.year >= _ISO_YEARS:  # the same text, without strftime's cost (tens of thousands a sync)
        return t.isoformat(timespec="microseconds")[:-6] + "Z"
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
