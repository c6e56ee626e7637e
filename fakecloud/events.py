"""The workspace's append-only event log, and the query behind ``/events/list``.

Events are Seam event objects (``event_id``, ``workspace_id``, ``created_at``, ``occurred_at``,
``event_type`` and the ids the event type requires). Each entry also keeps the moment it was
logged, which is what time filters use, so injected raw events with broken timestamps still
sort and filter.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from fakecloud.json_types import JsonObject
from fakecloud.timestamps import to_iso


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of ``/events/list``. Time bounds are exclusive: ``after < logged_at < before``."""

    after: datetime | None = None
    before: datetime | None = None
    event_types: Collection[str] | None = None
    access_grant_ids: Collection[str] | None = None
    access_method_ids: Collection[str] | None = None
    limit: int = 500


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    logged_at: datetime
    event: JsonObject


class EventLog:
    """Append-only list of events, oldest first."""

    def __init__(
        self, *, workspace_id: str, now: Callable[[], datetime], new_id: Callable[[], str]
    ) -> None:
        self._workspace_id = workspace_id
        self._now = now
        self._new_id = new_id
        self._entries: list[_Entry] = []
        self._in_order = True
        """Entries were logged at non-decreasing times (the usual case): queries bisect."""

    def append(self, event_type: str, **fields: Any) -> JsonObject:
        """Log an event of ``event_type`` happening now; ``fields`` are its type-specific ids."""
        moment = self._now()
        stamp = to_iso(moment)
        event: JsonObject = {
            "event_id": self._new_id(),
            "workspace_id": self._workspace_id,
            "event_type": event_type,
            "created_at": stamp,
            "occurred_at": stamp,
            **fields,
        }
        self._add(moment, event)
        return event

    def _add(self, moment: datetime, event: JsonObject) -> None:
        if self._entries and moment < self._entries[-1].logged_at:
            self._in_order = False
        self._entries.append(_Entry(len(self._entries), moment, event))

    def append_raw(self, event: Mapping[str, Any]) -> JsonObject:
        """Log ``event`` exactly as given (for tests of clients' per-event validation)."""
        stored = dict(event)
        self._add(self._now(), stored)
        return stored

    def all(self) -> list[JsonObject]:
        return [entry.event for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def query(self, query: EventQuery) -> list[JsonObject]:
        """Matching events, oldest first, at most ``query.limit`` of them."""
        found: list[JsonObject] = []
        if self._in_order:
            start = 0
            if query.after is not None:
                start = bisect_right(self._entries, query.after, key=lambda e: e.logged_at)
            candidates: Iterable[_Entry] = islice(self._entries, start, None)
        else:
            candidates = sorted(self._entries, key=lambda e: (e.logged_at, e.seq))
        for entry in candidates:
            if query.before is not None and entry.logged_at >= query.before:
                break
            if _matches(entry, query):
                found.append(entry.event)
                if len(found) >= query.limit:
                    break
        return found


def _matches(entry: _Entry, query: EventQuery) -> bool:
    event = entry.event
    if query.after is not None and not entry.logged_at > query.after:
        return False
    if query.before is not None and not entry.logged_at < query.before:
        return False
    if query.event_types is not None and event.get("event_type") not in query.event_types:
        return False
    if query.access_grant_ids is not None:
        grant_ids = set(_id_list(event, "access_grant_ids"))
        grant_ids.add(str(event.get("access_grant_id")))
        if grant_ids.isdisjoint(query.access_grant_ids):
            return False
    methods = query.access_method_ids
    return methods is None or event.get("access_method_id") in methods


def _id_list(event: JsonObject, key: str) -> list[str]:
    value = event.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
