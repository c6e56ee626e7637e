"""Byte-level tests of CRC, COBS and the serial framing: bytes straight into the parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.lockproto.cobs import cobs_decode, cobs_encode
from drivers.lockproto.crc import CHECK_VALUE, crc16
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.framing import Deframer, Frame, decode_frame, encode_frame


def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == CHECK_VALUE == 0x29B1


def _crc16_bitwise(data: bytes) -> int:  # the C code of docs/protocol.md §3.3
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff" * 300, bytes(range(256))])
def test_crc16_matches_the_documented_algorithm(data: bytes) -> None:
    assert crc16(data) == _crc16_bitwise(data)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_encodings(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


@pytest.mark.parametrize("length", [0, 1, 253, 254, 255, 508, 1000])
def test_cobs_round_trip_without_zeros(length: int) -> None:
    raw = bytes((i * 7) % 256 for i in range(length))
    encoded = cobs_encode(raw)
    assert 0 not in encoded
    assert cobs_decode(encoded) == raw


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x01\x02", b"\x03\x01\x00"])
def test_cobs_refuses_bad_input(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        cobs_decode(bad)


def test_frame_round_trip_and_layout() -> None:
    frame = Frame(0x05, True, b"\x7f\x43")
    wire = encode_frame(frame)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert decode_frame(wire[1:-1]) == frame
    body = cobs_decode(wire[1:-1])
    assert body[:2] == b"\x05\x80"
    assert int.from_bytes(body[-2:], "little") == crc16(body[:-2])


def test_frame_refuses_bad_address_reserved_bits_and_short() -> None:
    with pytest.raises(ValueError, match="address"):
        encode_frame(Frame(0, False, b"\x01"))
    for body in (b"\x00\x00\x01", b"\x05\x01\x01", b"\x05\x00"):
        raw = body + crc16(body).to_bytes(2, "little")
        with pytest.raises(DecodeError):
            decode_frame(cobs_encode(raw))


def test_deframer_counts_and_resyncs_after_noise() -> None:
    deframer = Deframer()
    good = encode_frame(Frame(1, False, b"\x01payload"))
    corrupted = bytearray(encode_frame(Frame(1, False, b"\x01payload")))
    corrupted[6] ^= 0x01  # a payload byte: the CRC no longer matches
    stream = b"\x13\x37noise" + good + bytes(corrupted) + b"\x00\x00" + good[3:] + good
    frames = deframer.feed(stream)
    assert [f.datagram for f in frames] == [b"\x01payload", b"\x01payload"]
    assert deframer.stats.frames == 2
    # the noise does not COBS-decode; the corrupted and the cut-off frames fail the CRC
    assert deframer.stats.refused == {"malformed": 1, "bad_crc": 2}


def test_deframer_handles_frames_split_across_reads() -> None:
    deframer = Deframer()
    wire = encode_frame(Frame(9, True, bytes(range(1, 200))))
    frames = [f for i in range(len(wire)) for f in deframer.feed(wire[i : i + 1])]
    assert frames == [Frame(9, True, bytes(range(1, 200)))]


def test_deframer_bounds_memory_on_endless_garbage() -> None:
    deframer = Deframer(max_datagram=64)
    for _ in range(100):
        assert deframer.feed(b"\x55" * 1000) == []
    assert len(deframer._buf) <= 80  # never more than one frame's worth
    assert deframer.stats.refused == {"oversize": 1}
    good = encode_frame(Frame(3, False, b"\x01ok"))
    assert deframer.feed(good) == [Frame(3, False, b"\x01ok")]


def _cobs_bytewise(data: bytes) -> bytes:  # Cheshire & Baker's encoder, one byte at a time
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte:
            block.append(byte)
            if len(block) == 254:
                out += bytes((255,)) + block
                block.clear()
        else:
            out += bytes((len(block) + 1,)) + block
            block.clear()
    return bytes(out + bytes((len(block) + 1,)) + block)


@given(st.binary(max_size=600) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=600).map(bytes))
def test_cobs_matches_the_bytewise_encoder_and_round_trips(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert encoded == _cobs_bytewise(data)
    assert cobs_decode(encoded) == data


def test_deframer_refuses_an_oversize_frame_that_came_in_one_read() -> None:
    deframer = Deframer(max_datagram=64)
    big = encode_frame(Frame(3, False, bytes(range(1, 120))))
    good = encode_frame(Frame(3, False, b"\x01ok"))
    assert deframer.feed(big + good) == [Frame(3, False, b"\x01ok")]
    assert deframer.stats.refused == {"oversize": 1}
