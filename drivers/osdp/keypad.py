"""PIN entry at one reader: key presses in, whole PINs out.

A reader reports each key (or a burst of keys) as it is pressed; it keeps no entry of its own.
Per reader: ``#`` ends the entry, ``*`` clears it, a pause longer than the inter-key timeout
drops a partial entry (the next key starts a new one), and an entry that grows past the
maximum length is refused once and the rest of it ignored up to the next ``#`` or ``*``.

Readers differ in how they send keys. Both ASCII (``'0'``..``'9'``, ``'#'``, ``'*'``) and raw
values (0..9) are accepted; for the two special keys also the codes common decoders use
(``#`` as 0x0D or 11, ``*`` as 0x7F or 10). Any other byte is ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

ENTER = frozenset({ord("#"), 0x0D, 11})
CLEAR = frozenset({ord("*"), 0x7F, 10})


def key_of(byte: int) -> str | None:
    """A reader's key byte as ``'0'``..``'9'``, ``'#'``, ``'*'``; ``None`` for anything else."""
    if 0x30 <= byte <= 0x39:
        return chr(byte)
    if 0 <= byte <= 9:
        return chr(0x30 + byte)
    if byte in ENTER:
        return "#"
    if byte in CLEAR:
        return "*"
    return None


class EntryResult(enum.Enum):
    PIN = "pin"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"


@dataclass(frozen=True, slots=True)
class Entry:
    result: EntryResult
    pin: str = field(default="", repr=False)


class PinEntry:
    """The entry in progress at one reader. ``now`` is the gateway's clock (a test moves it)."""

    def __init__(
        self,
        *,
        min_length: int,
        max_length: int,
        inter_key_timeout: float,
        now: Callable[[], datetime],
    ) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.timeout = timedelta(seconds=inter_key_timeout)
        self._now = now
        self._digits: list[str] = []
        self._overflowed = False
        self._last_key: datetime | None = None
        self.dropped = 0
        """Partial entries dropped by the inter-key timeout (for tests and the log)."""

    def __repr__(self) -> str:
        return f"PinEntry(pending={len(self._digits)} digits)"

    @property
    def pending(self) -> int:
        return len(self._digits)

    def feed(self, data: bytes) -> list[Entry]:
        """Take one report's key bytes; returns what was entered (usually nothing or one)."""
        out: list[Entry] = []
        now = self._now()
        if self._last_key is not None and now - self._last_key > self.timeout:
            if self._digits or self._overflowed:
                self.dropped += 1
            self._reset()
        self._last_key = now
        for byte in data:
            key = key_of(byte)
            if key is None:
                continue
            if key == "*":
                self._reset()
            elif key == "#":
                if self._overflowed:
                    pass  # refused already when it overflowed
                elif len(self._digits) >= self.min_length:
                    out.append(Entry(EntryResult.PIN, "".join(self._digits)))
                elif self._digits:
                    out.append(Entry(EntryResult.TOO_SHORT))
                self._reset()
            elif self._overflowed:
                continue
            elif len(self._digits) >= self.max_length:
                self._digits.clear()
                self._overflowed = True
                out.append(Entry(EntryResult.TOO_LONG))
            else:
                self._digits.append(key)
        return out

    def _reset(self) -> None:
        self._digits.clear()
        self._overflowed = False
