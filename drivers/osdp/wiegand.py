"""Card reads as a reader reports them, decoded into the card number the cloud knows.

An OSDP reader reports a card as raw Wiegand bits (``osdp_RAW``: a bit count and the bits, most
significant first) or, more rarely, as ASCII digits. The common Wiegand formats are recognised
by their length and checked by their parity bits:

========  ======  =============  =============  ==============================================
format    bits    facility code  card number    parity
========  ======  =============  =============  ==============================================
H10301    26      8 bits         16 bits        even over the first 12, odd over the last 12
H10306    34      16 bits        16 bits        even over the first 16, odd over the last 16
C1000     35      12 bits        20 bits        HID Corporate 1000 (three interleaved bits)
H10304    37      16 bits        19 bits        even over the first 18, odd over the last 18
H10302    37      none           35 bits        even over the first 18, odd over the last 18
========  ======  =============  =============  ==============================================

Which number is compared with the cloud's ``card_number`` is the reader's ``card_number``
option: ``number`` (the card number field alone, the usual printed number), ``facility_number``
(the facility code followed by the card number, zero-padded to its field's width), or ``raw``
(every bit, parity included, as one unsigned integer: any other format). A card whose parity
does not check is a misread and is refused without asking the validator.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

CardNumberStyle = Literal["number", "facility_number", "raw"]


class CardDataFormat(enum.IntEnum):
    """``format`` of libosdp's card-read event (``osdp.CardFormat``)."""

    RAW_UNSPECIFIED = 0
    RAW_WIEGAND = 1
    ASCII = 2


class CardReadError(ValueError):
    """A card read that cannot be a card: bad parity, no bits, not digits. Names no bits."""


def _bit(bits: str, i: int) -> int:
    return 1 if bits[i] == "1" else 0


def _ones(bits: str, positions: range | list[int]) -> int:
    return sum(_bit(bits, i) for i in positions)


def _halves(even_upto: int, odd_from: int) -> Callable[[str], bool]:
    """Even parity in bit 0 over bits 1..even_upto-1; odd parity in the last bit over
    odd_from..n-2 (0-based, bits as a string)."""

    def check(bits: str) -> bool:
        n = len(bits)
        even_ok = _ones(bits, range(even_upto)) % 2 == 0
        odd_ok = _ones(bits, range(odd_from, n)) % 2 == 1
        return even_ok and odd_ok

    return check


def _c1000(bits: str) -> bool:
    """HID Corporate 1000, 35 bits (1-based: bit 1 odd over all, bit 2 even over 3-4, 6-7,
    ..., 33-34, bit 35 odd over 2-3, 5-6, ..., 32-33)."""
    p2 = [i - 1 for i in range(2, 36) if i % 3 != 2 and i <= 34] + [1]
    p35 = [i - 1 for i in range(2, 36) if i % 3 != 1 and i <= 33] + [34]
    return (
        _ones(bits, p2) % 2 == 0
        and _ones(bits, p35) % 2 == 1
        and bits.count("1") % 2 == 1
    )


@dataclass(frozen=True, slots=True)
class WiegandFormat:
    name: str
    length: int
    facility: tuple[int, int] | None
    """(first bit, width), 0-based over the whole frame; ``None``: no facility code."""
    number: tuple[int, int]
    check: Callable[[str], bool] = field(repr=False)


H10301 = WiegandFormat("H10301", 26, (1, 8), (9, 16), _halves(13, 13))
H10306 = WiegandFormat("H10306", 34, (1, 16), (17, 16), _halves(17, 17))
C1000 = WiegandFormat("C1000", 35, (2, 12), (14, 20), _c1000)
H10304 = WiegandFormat("H10304", 37, (1, 16), (17, 19), _halves(19, 18))
H10302 = WiegandFormat("H10302", 37, None, (1, 35), _halves(19, 18))

FORMATS_BY_NAME = {f.name: f for f in (H10301, H10306, C1000, H10304, H10302)}
Wiegand37 = Literal["H10304", "H10302"]


@dataclass(frozen=True, slots=True)
class Card:
    """A decoded read. Numbers are secrets: none of them is in ``repr``."""

    format: str
    """The format's name, or ``raw`` / ``ascii``."""
    length: int
    facility: int | None = field(default=None, repr=False)
    number: int | None = field(default=None, repr=False)
    raw: int = field(default=0, repr=False)
    text: str | None = field(default=None, repr=False)
    """ASCII reads: the digits as the reader sent them."""

    def card_number(self, style: CardNumberStyle) -> str:
        """The string compared with the cloud's ``card_number``."""
        if self.text is not None:
            return self.text
        if style == "raw" or self.number is None:
            return str(self.raw)
        if style == "facility_number" and self.facility is not None:
            fmt = FORMATS_BY_NAME[self.format]
            width = len(str((1 << fmt.number[1]) - 1))
            return f"{self.facility}{self.number:0{width}d}"
        return str(self.number)


def bits_of(data: bytes, length: int) -> str:
    """The first ``length`` bits of ``data``, most significant first, as ``"0101..."``."""
    if length <= 0 or length > len(data) * 8:
        raise CardReadError(f"bit count {length} does not fit {len(data)} bytes")
    return format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")[:length]


def decode_wiegand(bits: str, *, wiegand_37: Wiegand37 = "H10304") -> Card:
    """Decode raw Wiegand bits: a known format by its length (parity checked), else raw."""
    raw = int(bits, 2)
    candidates = [f for f in (H10301, H10306, C1000) if f.length == len(bits)]
    if len(bits) == 37:
        candidates = [FORMATS_BY_NAME[wiegand_37]]
    if not candidates:
        return Card("raw", len(bits), raw=raw)
    fmt = candidates[0]
    if not fmt.check(bits):
        raise CardReadError(f"{fmt.name} parity does not check")
    facility = None
    if fmt.facility is not None:
        start, width = fmt.facility
        facility = int(bits[start : start + width], 2)
    start, width = fmt.number
    number = int(bits[start : start + width], 2)
    return Card(fmt.name, len(bits), facility, number, raw)


def decode_card(
    data_format: int, data: bytes, length: int, *, wiegand_37: Wiegand37 = "H10304"
) -> Card:
    """Decode a card-read event's ``format``, ``data`` and ``length`` (bits; bytes for ASCII)."""
    if data_format == CardDataFormat.ASCII:
        text = data.decode("ascii", "replace").strip()
        if not text.isdigit() or not text.isascii():
            raise CardReadError("ASCII card data is not digits")
        return Card("ascii", len(text), text=text)
    return decode_wiegand(bits_of(data, length), wiegand_37=wiegand_37)


def encode_wiegand(fmt: WiegandFormat, number: int, facility: int | None = None) -> str:
    """The bits a card of ``fmt`` carries (for simulators and tests): fields, then parity."""
    bits = ["0"] * fmt.length
    fields = [(fmt.number, number)]
    if fmt.facility is not None:
        fields.append((fmt.facility, facility or 0))
    for (start, width), value in fields:
        if not 0 <= value < (1 << width):
            raise ValueError(f"{value} does not fit {width} bits")
        bits[start : start + width] = format(value, f"0{width}b")
    parity = [0, 1, fmt.length - 1] if fmt is C1000 else [0, fmt.length - 1]
    for combo in range(1 << len(parity)):
        for k, i in enumerate(parity):
            bits[i] = "1" if combo >> k & 1 else "0"
        if fmt.check("".join(bits)):
            return "".join(bits)
    raise AssertionError(f"no parity makes {fmt.name} check")


def to_bytes(bits: str) -> bytes:
    """Bits as libosdp's card-read ``data`` (most significant first, padded with zeros)."""
    n = (len(bits) + 7) // 8
    return int(bits.ljust(n * 8, "0"), 2).to_bytes(n, "big")
