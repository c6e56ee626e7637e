"""Consistent Overhead Byte Stuffing: removes every 0x00 so 0x00 can delimit frames.

Encoding follows Cheshire & Baker (1999): a code byte ``n`` (1..255) is followed by ``n-1``
data bytes; a code below 0xFF implies a 0x00 after its data unless the input ends there.
"""

from __future__ import annotations

from drivers.lockproto.errors import DecodeError

_CODE = [bytes((n,)) for n in range(256)]


def cobs_encode(data: bytes) -> bytes:
    if len(data) < 254:  # no block can reach 254 bytes: one code byte before each
        return b"".join([_CODE[len(block) + 1] + block for block in data.split(b"\x00")])
    out = bytearray()
    for block in data.split(b"\x00"):
        while len(block) >= 254:
            out.append(0xFF)
            out += block[:254]
            block = block[254:]
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    if 0 in data:
        raise DecodeError("0x00 inside a COBS frame")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if end > n:
            raise DecodeError("COBS block runs past the end of the frame")
        out += data[i + 1 : end]
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def cobs_max_encoded(n: int) -> int:
    """The longest encoding of ``n`` bytes."""
    return n + n // 254 + 1
