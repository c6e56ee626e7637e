"""Seam cursor pagination: ``limit`` + ``page_cursor`` in, ``pagination`` out.

A cursor is opaque to clients: URL-safe base64 of the list it belongs to and the sequence
number of the last object served. The next page holds the objects after that one, so objects
deleted or added meanwhile cause neither duplicates nor gaps among the others.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

from fakecloud.errors import InvalidInput
from fakecloud.json_types import JsonObject


@dataclass(frozen=True, slots=True)
class Page:
    items: list[JsonObject]
    next_cursor: str | None


def encode_cursor(scope: str, after_seq: int) -> str:
    raw = json.dumps({"l": scope, "a": after_seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as err:
        raise InvalidInput("page_cursor is not a valid cursor") from err
    if not isinstance(data, dict) or data.get("l") != scope or not isinstance(data.get("a"), int):
        raise InvalidInput("page_cursor does not belong to this list")
    after: int = data["a"]
    return after


Source = Callable[[int], Iterable[tuple[int, JsonObject]]]
"""Given the sequence number a page starts after, ``(sequence number, object)`` pairs after it,
ascending (objects at or before that number are skipped if the source yields them)."""


def paginate(source: Source, *, scope: str, limit: int, cursor: str | None) -> Page:
    """One page of the objects ``source`` yields after ``cursor``.

    Reads at most ``limit + 1`` matching objects, so paging through a list costs linear time.
    """
    after = decode_cursor(scope, cursor) if cursor else 0
    taken = list(islice((e for e in source(after) if e[0] > after), limit + 1))
    page = taken[:limit]
    has_next = len(taken) > limit
    next_cursor = encode_cursor(scope, page[-1][0]) if has_next and page else None
    return Page([obj for _, obj in page], next_cursor)
