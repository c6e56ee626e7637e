"""Byte-stream framing for serial carriers (RS-485, UART): docs/protocol.md §3.

On the wire a frame is ``00 COBS(address ‖ control ‖ datagram ‖ crc16-le) 00``. The leading
delimiter lets a receiver that joined mid-frame, or saw line noise, resynchronise on the very
next frame. :class:`Deframer` turns any byte stream into frames and counts what it refuses; it
never raises and holds at most ``max_frame`` bytes however long the garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.lockproto.cobs import cobs_decode, cobs_encode, cobs_max_encoded
from drivers.lockproto.crc import crc16
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.stats import RefusalStats

DELIMITER = 0x00
CTL_FROM_LOCK = 0x80
"""Control bit 7: the frame travels from a lock to the gateway."""
CTL_RESERVED = 0x7F
ADDRESS_MIN = 0x01
ADDRESS_MAX = 0xF7
MAX_DATAGRAM = 2048
"""The largest datagram a serial frame may carry (a lock announces its own, smaller limit)."""
FRAME_OVERHEAD = 2 + 2 + 2
"""Address, control, CRC and the two delimiters, before COBS stuffing."""


@dataclass(frozen=True, slots=True)
class Frame:
    address: int
    from_lock: bool
    datagram: bytes


def encode_frame(frame: Frame) -> bytes:
    if not ADDRESS_MIN <= frame.address <= ADDRESS_MAX:
        raise ValueError(f"bus address {frame.address} outside {ADDRESS_MIN}..{ADDRESS_MAX}")
    body = bytes((frame.address, CTL_FROM_LOCK if frame.from_lock else 0)) + frame.datagram
    body += crc16(body).to_bytes(2, "little")
    return b"\x00" + cobs_encode(body) + b"\x00"


def wire_size(datagram_len: int) -> int:
    """Bytes on the wire for a frame carrying ``datagram_len`` bytes (worst-case stuffing)."""
    return cobs_max_encoded(datagram_len + 4) + 2


@dataclass(slots=True)
class FramingStats(RefusalStats):
    frames: int = 0
    bytes_in: int = 0


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame between delimiters (without them). Raises :class:`DecodeError`."""
    body = cobs_decode(encoded)
    if len(body) < 5:
        raise DecodeError("frame shorter than address, control, one datagram byte and CRC")
    if crc16(body[:-2]) != int.from_bytes(body[-2:], "little"):
        raise _CrcError("CRC mismatch")
    address, ctl = body[0], body[1]
    if ctl & CTL_RESERVED:
        raise DecodeError("reserved control bits set")
    if not ADDRESS_MIN <= address <= ADDRESS_MAX:
        raise DecodeError(f"bus address {address} out of range")
    return Frame(address, bool(ctl & CTL_FROM_LOCK), body[2:-2])


class _CrcError(DecodeError):
    code = "bad_crc"


class Deframer:
    """Splits a byte stream into :class:`Frame` objects. Empty frames (idle 00 00) are ignored."""

    def __init__(self, max_datagram: int = MAX_DATAGRAM) -> None:
        self._limit = cobs_max_encoded(max_datagram + 4)
        self._buf = bytearray()
        self._discarding = False
        self.stats = FramingStats()

    def feed(self, data: bytes) -> list[Frame]:
        self.stats.bytes_in += len(data)
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                return frames
            if self._buf or self._discarding:
                self._append(data[start:end])
                encoded, discarding = bytes(self._buf), self._discarding
                self._buf.clear()
                self._discarding = False
                if discarding:
                    start = end + 1
                    continue
            else:  # the frame began in this read (the usual case): no copy into the buffer
                encoded = data[start:end]
                if len(encoded) > self._limit:
                    self.stats.refuse("oversize")
                    encoded = b""
            start = end + 1
            if encoded:
                frame = self._decode(encoded)
                if frame is not None:
                    frames.append(frame)

    def _append(self, chunk: bytes) -> None:
        if self._discarding or not chunk:
            return
        if len(self._buf) + len(chunk) > self._limit:
            self._buf.clear()
            self._discarding = True
            self.stats.refuse("oversize")
            return
        self._buf += chunk

    def _decode(self, encoded: bytes) -> Frame | None:
        try:
            frame = decode_frame(encoded)
        except _CrcError:
            self.stats.refuse("bad_crc")
            return None
        except DecodeError:
            self.stats.refuse("malformed")
            return None
        self.stats.frames += 1
        return frame
