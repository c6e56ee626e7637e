"""ISO 8601 timestamps the way Seam writes them (UTC, milliseconds, trailing ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fakecloud.errors import InvalidInput


def utc_now() -> datetime:
    """The default clock of the fake cloud."""
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Format ``moment`` like Seam: ``2025-06-16T16:54:17.946Z``. Naive times are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str, *, field: str) -> datetime:
    """Parse an ISO 8601 timestamp from a request; naive times are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise InvalidInput(f"{field} must be an ISO 8601 timestamp, got {text!r}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
