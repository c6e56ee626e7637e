"""Timestamps in the database: ISO 8601 UTC text, which sorts as time does."""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
