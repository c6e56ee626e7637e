"""Datagrams, messages and bodies: round trips, and refusal of malformed bytes."""

from __future__ import annotations

import pytest

from drivers.lockproto import datagrams as dgm
from drivers.lockproto.crypto import aead_nonce
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.messages import (
    MsgType,
    Reply,
    Request,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)
from drivers.lockproto.records import (
    AccessAnswerRecord,
    AccessRequestRecord,
    BatchResults,
    CredentialPage,
    CredentialRecord,
    DeleteCredentials,
    DeviceInfo,
    EventPageRecord,
    EventRecord,
    InfoFlag,
    ListCredentials,
    PollFlag,
    PollReply,
    PutCredentials,
    ReadEvents,
    StatusRecord,
    U32Body,
    UnlockBody,
)
from drivers.lockproto.status import Status

DATAGRAMS = [
    dgm.Hello(1, 1, b"g" * 8, b"n" * 16, b"e" * 32),
    dgm.HelloReply(1, 0xDEADBEEF, b"d" * 8, b"n" * 16, b"e" * 32, b"c" * 16),
    dgm.Data(7, 2**64 - 2, b"x" * 40),
    dgm.PairStart(1, 2, b"n" * 16, b"s" * 32),
    dgm.PairChallenge(1, b"d" * 8, b"n" * 16, b"s" * 32),
    dgm.PairProof(b"p" * 16),
    dgm.PairDone(b"q" * 16),
    dgm.ErrorDg(Status.VERSION_UNSUPPORTED, b"\x01\x01"),
]


@pytest.mark.parametrize("dg", DATAGRAMS, ids=lambda d: type(d).__name__)
def test_datagram_round_trip_and_truncation(dg: dgm.Datagram) -> None:
    raw = dgm.encode(dg)
    assert dgm.decode(raw) == dg
    if not isinstance(dg, dgm.Data | dgm.ErrorDg):
        with pytest.raises(DecodeError):
            dgm.decode(raw[:-1])
        with pytest.raises(DecodeError):
            dgm.decode(raw + b"\x00")


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x55", b"\x03\x01\x02", b"\x7f\xee"])
def test_datagram_refuses_unknown_and_short(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        dgm.decode(raw)


def test_envelopes() -> None:
    req = Request(MsgType.POLL, 513, b"\x01")
    assert decode_request(encode_request(req)) == req
    rep = Reply(MsgType.POLL, 513, Status.BUSY, b"")
    assert encode_reply(rep)[:4] == bytes((0x8B, 0x01, 0x02, 0x03))
    assert decode_reply(encode_reply(rep)) == rep
    with pytest.raises(DecodeError):
        decode_request(encode_reply(rep))
    with pytest.raises(DecodeError):
        decode_reply(encode_request(req))


BODIES = [
    PutCredentials(
        (
            CredentialRecord(1, "a", b"t" * 8, b"1234", None, None),
            CredentialRecord(3, "é" * 32, b"t" * 8, bytes(64), 1, 2**32 - 1),
        )
    ),
    DeleteCredentials(("a", "b")),
    BatchResults((Status.OK, Status.CAPACITY)),
    ListCredentials(3, 10),
    CredentialPage(0xFFFF, (CredentialRecord(2, "card", b"t" * 8, None, 5, None),)),
    DeviceInfo("fw", 200, 3, 50, 1024, frozenset({1, 2}), InfoFlag.HAS_KEYPAD, 4, 8, "0123", 150),
    StatusRecord(1, 87, True, 1_700_000_000),
    U32Body(42),
    UnlockBody(50),
    ReadEvents(10, 100),
    EventPageRecord(12, (EventRecord(12, 5, 1, 1, 2, "a", "valid"), EventRecord(13, 6, 6))),
    PollReply(
        PollFlag.ACCESS_REQUEST | PollFlag.MORE_REQUESTS, 9,
        AccessRequestRecord(4, 1, 5, b"9999", b""),
    ),
    PollReply(PollFlag(0), 0),
    AccessAnswerRecord(4, True, "valid", "cred-1"),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_body_round_trip_and_trailing_bytes(body: object) -> None:
    raw = body.encode()  # type: ignore[attr-defined]
    assert type(body).decode(raw) == body  # type: ignore[attr-defined]
    with pytest.raises(DecodeError):
        type(body).decode(raw + b"\x00")  # type: ignore[attr-defined]
    if raw:
        with pytest.raises(DecodeError):
            type(body).decode(raw[:-1])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        bytes((1, 9, 1)) + b"a" + bytes(8) + b"\x00",  # one entry: kind 9
        bytes((1, 1, 0x04, 1)) + b"a" + bytes(8) + b"\x00",  # reserved flag bit
        bytes((1, 1, 0, 0)) + bytes(8) + b"\x00",  # empty id
        bytes((1, 1, 0, 65)) + b"a" * 65 + bytes(8) + b"\x00",  # id too long
        bytes((1, 1, 0, 1)) + b"a" + bytes(8) + bytes((65,)) + bytes(65),  # secret too long
    ],
)
def test_put_refuses_bad_entries(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        PutCredentials.decode(raw)


def test_reason_is_clipped_on_a_character_boundary() -> None:
    rec = AccessAnswerRecord(1, False, "é" * 40)
    decoded = AccessAnswerRecord.decode(rec.encode())
    assert decoded.reason == "é" * 16


def test_data_header_and_nonce_layout() -> None:
    # type, session id (u32 LE), counter (u64 LE): the AEAD's associated data, as on the wire
    header = dgm.data_header(0x01020304, 0x0A0B0C0D0E0F1011)
    assert header == b"\x03" + bytes((4, 3, 2, 1)) + bytes((0x11, 0x10, 0x0F, 0x0E, 0x0D,
                                                              0x0C, 0x0B, 0x0A))
    assert dgm.Data(0x01020304, 0x0A0B0C0D0E0F1011, b"").header == header
    assert aead_nonce(0x0A0B0C0D0E0F1011) == bytes(4) + header[5:]


@pytest.mark.parametrize("length", range(dgm.DATA_HEADER_LEN + dgm.TAG_LEN + 2))
def test_a_data_datagram_needs_its_header_and_tag(length: int) -> None:
    raw = (b"\x03" + bytes(range(1, 64)))[:length]
    if length < dgm.DATA_HEADER_LEN + dgm.TAG_LEN:
        with pytest.raises(DecodeError):
            dgm.decode(raw)
    else:
        dg = dgm.decode(raw)
        assert isinstance(dg, dgm.Data) and dgm.encode(dg) == raw


def test_a_reply_needs_its_header_and_a_known_status() -> None:
    for short in (b"", b"\x8b", b"\x8b\x01\x00"):
        with pytest.raises(DecodeError):
            decode_reply(short)
    with pytest.raises(DecodeError):
        decode_reply(bytes((0x8B, 1, 0, 0xEE)))


@pytest.mark.parametrize("bits", range(256))
def test_a_poll_reply_without_a_request_keeps_the_known_flags_only(bits: int) -> None:
    raw = bytes((bits,)) + (77).to_bytes(4, "little")
    if bits & PollFlag.ACCESS_REQUEST:  # says a request follows: none does
        with pytest.raises(DecodeError):
            PollReply.decode(raw)
        return
    reply = PollReply.decode(raw)
    assert reply == PollReply(PollFlag(bits & 0x0F), 77)
    assert type(reply.flags) is PollFlag
