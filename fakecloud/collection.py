"""An ordered store of JSON objects keyed by id, with a stable sequence number per object.

Cursor pagination walks objects by sequence number, so deleting or adding objects between
two pages neither repeats nor skips the objects that were already there. Every operation is
O(1) (amortised) or O(log n) to find a cursor's place, so a 50,000-grant workspace is built and
paged through in linear time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from fakecloud.json_types import JsonObject


class Collection:
    """Objects of one kind (grants, spaces ...) in insertion order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, tuple[int, JsonObject]] = {}
        self._next_seq = 1
        self._order_seqs: list[int] = []
        self._order_keys: list[str] = []
        """Every sequence number ever handed out, ascending, with its key; entries of removed
        objects stay until :meth:`_compact` drops them (a key's current sequence number tells)."""

    def put(self, key: str, obj: JsonObject) -> JsonObject:
        """Add ``obj`` under ``key``, or replace it in place (keeping its position)."""
        if key in self._items:
            seq = self._items[key][0]
        else:
            seq = self._next_seq
            self._next_seq += 1
            self._order_seqs.append(seq)
            self._order_keys.append(key)
        self._items[key] = (seq, obj)
        return obj

    def get(self, key: str) -> JsonObject | None:
        entry = self._items.get(key)
        return None if entry is None else entry[1]

    def __getitem__(self, key: str) -> JsonObject:
        """The object under ``key``; ``KeyError`` when there is none."""
        return self._items[key][1]

    def remove(self, key: str) -> JsonObject | None:
        entry = self._items.pop(key, None)
        if len(self._order_seqs) > 2 * len(self._items) + 64:
            self._compact()
        return None if entry is None else entry[1]

    def _compact(self) -> None:
        live = [
            (seq, key)
            for seq, key in zip(self._order_seqs, self._order_keys, strict=True)
            if self._items.get(key, (None,))[0] == seq
        ]
        self._order_seqs = [seq for seq, _ in live]
        self._order_keys = [key for _, key in live]

    def keyed_after(self, after_seq: int = 0) -> Iterator[tuple[int, str, JsonObject]]:
        """``(sequence number, key, object)`` of objects after ``after_seq``, oldest first.

        Finding the place is a binary search, so a page costs what it returns, not the size
        of the collection. Do not change the collection while iterating.
        """
        seqs, keys = self._order_seqs, self._order_keys
        for i in range(bisect_right(seqs, after_seq), len(seqs)):
            seq, key = seqs[i], keys[i]
            entry = self._items.get(key)
            if entry is not None and entry[0] == seq:
                yield seq, key, entry[1]

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
