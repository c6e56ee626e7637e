"""An ordered store of JSON objects keyed by id, with a stable sequence number per object.

Cursor pagination walks objects by sequence number, so deleting or adding objects between
two pages neither repeats nor skips the objects that were already there.
"""

from __future__ import annotations

from collections.abc import Iterator

from fakecloud.json_types import JsonObject


class Collection:
    """Objects of one kind (grants, spaces ...) in insertion order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, tuple[int, JsonObject]] = {}
        self._next_seq = 1

    def put(self, key: str, obj: JsonObject) -> JsonObject:
        """Add ``obj`` under ``key``, or replace it in place (keeping its position)."""
        if key in self._items:
            seq = self._items[key][0]
        else:
            seq = self._next_seq
            self._next_seq += 1
        self._items[key] = (seq, obj)
        return obj

    def get(self, key: str) -> JsonObject | None:
        entry = self._items.get(key)
        return None if entry is None else entry[1]

    def remove(self, key: str) -> JsonObject | None:
        entry = self._items.pop(key, None)
        return None if entry is None else entry[1]

    def entries(self) -> list[tuple[int, JsonObject]]:
        """``(sequence number, object)`` pairs, oldest first."""
        return list(self._items.values())

    def keyed_entries(self) -> list[tuple[int, str, JsonObject]]:
        """``(sequence number, key, object)`` triples, oldest first."""
        return [(seq, key, obj) for key, (seq, obj) in self._items.items()]

    def values(self) -> list[JsonObject]:
        return [obj for _, obj in self._items.values()]

    def keys(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, JsonObject]]:
        return [(key, obj) for key, (_, obj) in self._items.items()]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[JsonObject]:
        return iter(self.values())
