"""Wiegand decoding: the common formats by length, parity checked, raw otherwise."""

from __future__ import annotations

import pytest

from drivers.osdp.wiegand import (
    FORMATS_BY_NAME,
    H10301,
    CardDataFormat,
    CardReadError,
    bits_of,
    decode_card,
    decode_wiegand,
    encode_wiegand,
    to_bytes,
)


def test_h10301_known_vector() -> None:
    # Facility 1, card 1: even parity 1, odd parity 0 (the textbook example).
    assert encode_wiegand(H10301, 1, 1) == "10000000100000000000000010"
    card = decode_wiegand("10000000100000000000000010")
    assert (card.format, card.facility, card.number) == ("H10301", 1, 1)


@pytest.mark.parametrize("name", sorted(FORMATS_BY_NAME))
def test_every_format_round_trips_and_a_flipped_bit_is_caught(name: str) -> None:
    fmt = FORMATS_BY_NAME[name]
    facility = 77 if fmt.facility else None
    bits = encode_wiegand(fmt, 12345, facility)
    w37 = name if fmt.length == 37 else "H10304"
    card = decode_wiegand(bits, wiegand_37=w37)  # type: ignore[arg-type]
    assert (card.format, card.facility, card.number) == (name, facility, 12345)
    for i in range(fmt.length):
        flipped = bits[:i] + ("1" if bits[i] == "0" else "0") + bits[i + 1 :]
        with pytest.raises(CardReadError):
            decode_wiegand(flipped, wiegand_37=w37)  # type: ignore[arg-type]


def test_card_number_styles() -> None:
    card = decode_wiegand(encode_wiegand(H10301, 4660, 18))
    assert card.card_number("number") == "4660"
    assert card.card_number("facility_number") == "1804660"
    assert card.card_number("raw") == str(int(encode_wiegand(H10301, 4660, 18), 2))
    assert "4660" not in repr(card)


def test_unknown_lengths_are_raw_and_ascii_is_digits() -> None:
    card = decode_card(CardDataFormat.RAW_WIEGAND, to_bytes("1" * 40), 40)
    assert (card.format, card.card_number("number")) == ("raw", str((1 << 40) - 1))
    assert decode_card(CardDataFormat.ASCII, b"0012345", 7).card_number("number") == "0012345"
    with pytest.raises(CardReadError):
        decode_card(CardDataFormat.ASCII, b"12AB", 4)
    with pytest.raises(CardReadError):
        bits_of(b"\x01", 9)
