"""Segmentation and reassembly of datagrams over GATT writes and notifications (docs/ble.md).

One ATT write or notification carries ``ATT_MTU - 3`` bytes. A datagram longer than that is
cut into segments::

    segment = header(u8) ‖ [length(u16 LE), first segment only] ‖ fragment
    header  = FIRST(bit 7) | index(bits 0-6, 0 on the first segment, +1 mod 128 after)

The receiver starts over on every FIRST segment, drops a datagram with a missing, repeated or
reordered segment (the session layer retransmits), and never buffers more than
``max_datagram`` bytes. It never raises: what it refuses is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.lockproto.stats import RefusalStats

FIRST = 0x80
INDEX_MASK = 0x7F
FIRST_OVERHEAD = 3
OVERHEAD = 1
MIN_SEGMENT = FIRST_OVERHEAD + 1


def segment(datagram: bytes, segment_size: int) -> list[bytes]:
    """Cut ``datagram`` into segments of at most ``segment_size`` bytes each."""
    if segment_size < MIN_SEGMENT:
        raise ValueError(f"segment size {segment_size} below {MIN_SEGMENT}")
    if not datagram:
        raise ValueError("empty datagram")
    if len(datagram) > 0xFFFF:
        raise ValueError("datagram longer than 65535 bytes")
    first_room = segment_size - FIRST_OVERHEAD
    out = [bytes((FIRST,)) + len(datagram).to_bytes(2, "little") + datagram[:first_room]]
    room = segment_size - OVERHEAD
    index = 0
    for start in range(first_room, len(datagram), room):
        index = (index + 1) & INDEX_MASK
        out.append(bytes((index,)) + datagram[start : start + room])
    return out


def segment_count(datagram_len: int, segment_size: int) -> int:
    first_room = segment_size - FIRST_OVERHEAD
    if datagram_len <= first_room:
        return 1
    room = segment_size - OVERHEAD
    return 1 + -(-(datagram_len - first_room) // room)


@dataclass(slots=True)
class ReassemblyStats(RefusalStats):
    segments: int = 0
    datagrams: int = 0


class Reassembler:
    """Feed segments in arrival order; whole datagrams come out."""

    def __init__(self, max_datagram: int) -> None:
        self.max_datagram = max_datagram
        self.stats = ReassemblyStats()
        self._buf = bytearray()
        self._total = 0
        self._next = 0
        self._active = False

    def reset(self) -> None:
        if self._active:
            self.stats.refuse("abandoned")
        self._active = False
        self._buf.clear()

    def feed(self, seg: bytes) -> bytes | None:
        self.stats.segments += 1
        if not seg:
            self.stats.refuse("empty")
            return None
        header = seg[0]
        if header & FIRST:
            if self._active:
                self.stats.refuse("abandoned")
            self._active = False
            self._buf.clear()
            if header & INDEX_MASK or len(seg) < FIRST_OVERHEAD:
                self.stats.refuse("malformed")
                return None
            total = int.from_bytes(seg[1:3], "little")
            if total == 0 or total > self.max_datagram:
                self.stats.refuse("oversize" if total else "malformed")
                return None
            self._total, self._next, self._active = total, 1, True
            return self._append(seg[FIRST_OVERHEAD:])
        if not self._active:
            self.stats.refuse("orphan")
            return None
        if header != self._next:
            self.stats.refuse("gap")
            self._active = False
            self._buf.clear()
            return None
        self._next = (self._next + 1) & INDEX_MASK
        return self._append(seg[OVERHEAD:])

    def _append(self, fragment: bytes) -> bytes | None:
        self._buf += fragment
        if len(self._buf) > self._total:
            self.stats.refuse("overrun")
            self._active = False
            self._buf.clear()
            return None
        if len(self._buf) < self._total:
            return None
        datagram = bytes(self._buf)
        self._active = False
        self._buf.clear()
        self.stats.datagrams += 1
        return datagram
