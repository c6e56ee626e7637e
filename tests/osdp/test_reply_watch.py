"""The reply watcher reads only headers of what passes on the line; noise never breaks it."""

from __future__ import annotations

import binascii

from hypothesis import given
from hypothesis import strategies as st

from drivers.osdp.channel import MAX_PACKET, REPLY_CCRYPT, REPLY_RMAC_I, ReplyWatch


def packet(addr: int, code: int, *, scb: bytes = b"", body: bytes = b"") -> bytes:
    ctrl = 0x04 | (0x08 if scb else 0)
    length = 5 + len(scb) + 1 + len(body) + 2
    frame = bytes([0x53, addr, length & 0xFF, length >> 8, ctrl]) + scb + bytes([code]) + body
    crc = binascii.crc_hqx(frame, 0x1D0F)
    return frame + bytes([crc & 0xFF, crc >> 8])


def test_replies_are_noted_per_address_and_commands_are_not() -> None:
    t = [0.0]
    watch = ReplyWatch(lambda: t[0])
    watch.feed(packet(0x05, 0x76, scb=b"\x03\x11\x00"))  # the panel's CHLNG to 5: a command
    broken = bytearray(packet(0x87, 0x40))
    broken[-1] ^= 1
    watch.feed(bytes(broken))  # a reply with a bad CRC: not a reply
    assert watch.last_reply == {}
    t[0] = 1.0
    watch.feed(packet(0x85, REPLY_CCRYPT, scb=b"\x03\x12\x00", body=bytes(32)))
    t[0] = 2.0
    stream = packet(0x86, 0x40) + packet(0x85, REPLY_RMAC_I, scb=b"\x03\x14\x01", body=bytes(16))
    for i in range(len(stream)):  # byte by byte, as a slow line delivers it
        watch.feed(stream[i : i + 1])
    assert watch.last_ccrypt == {5: 1.0}
    assert watch.last_rmac_i == {5: 2.0}
    assert watch.last_reply == {5: 2.0, 6: 2.0}


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_noise_never_raises_and_a_frame_after_it_is_still_seen(chunks: list[bytes]) -> None:
    watch = ReplyWatch(lambda: 7.0)
    for chunk in chunks:
        watch.feed(chunk)
    # Whatever false start the noise left, the frames that follow get through once the
    # false start is given up (at most one longest frame later).
    good = packet(0x81, REPLY_CCRYPT, scb=b"\x03\x12\x00", body=bytes(32))
    for _ in range(MAX_PACKET // len(good) + 2):
        watch.feed(good)
    assert watch.last_ccrypt.get(1) == 7.0
