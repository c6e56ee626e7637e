"""docs/protocol.md §11: the document's hex is checked against both sides' code."""

from __future__ import annotations

import asyncio

import pytest

from drivers.lockproto import crypto
from drivers.lockproto.client import ClientSession
from drivers.lockproto.cobs import cobs_encode
from drivers.lockproto.crc import crc16
from drivers.lockproto.framing import Deframer, Frame, encode_frame
from drivers.lockproto.messages import MsgType
from drivers.lockproto.pairing import commission
from tests.proto import vectors
from tests.proto.loopback import make_engine

DOC = vectors.read_doc()
GATEWAY_SENDS = ["pair_start", "pair_proof", "hello", "data_put", "data_poll"]
LOCK_SENDS = ["pair_challenge", "pair_done", "hello_reply", "data_put_reply", "data_poll_reply"]


def h(name: str) -> bytes:
    return bytes.fromhex(DOC[name])


def test_document_holds_every_vector() -> None:
    assert len(DOC) == 45
    assert set(GATEWAY_SENDS + LOCK_SENDS) <= set(DOC)


async def test_vectors_regenerate_from_fixed_keys() -> None:
    assert await vectors.agenerate() == DOC


def test_byte_layer_vectors() -> None:
    assert crc16(b"123456789").to_bytes(2, "big") == h("crc16_123456789")
    assert cobs_encode(h("cobs_in")) == h("cobs_out")
    assert encode_frame(Frame(5, False, h("hello"))) == h("frame_hello_address_5")
    deframer = Deframer()
    assert deframer.feed(h("frame_hello_reply_address_5")) == [Frame(5, True, h("hello_reply"))]


def test_key_schedule_vectors() -> None:
    ss = crypto.dh(h("gateway_static_private"), h("lock_static_public"))
    assert ss == crypto.dh(h("lock_static_private"), h("gateway_static_public"))
    assert ss == h("static_shared")
    keys = crypto.pairing_keys(h("pairing_secret"), ss, h("pair_transcript"))
    assert keys.long_term_key == h("long_term_key")
    assert crypto.parse_pairing_secret(DOC["pairing_label"]) == h("pairing_secret")
    session = crypto.session_keys(h("long_term_key"), h("ephemeral_shared"), ss,
                                  h("session_transcript"))
    assert session.gateway_to_lock == h("key_gateway_to_lock")
    assert session.lock_to_gateway == h("key_lock_to_gateway")
    sealer = crypto.Sealer(h("key_gateway_to_lock"))
    data_put = h("data_put")
    assert sealer.open(1, data_put[:13], data_put[13:]) == h("request_put")


class ScriptedLock:
    """A carrier that checks each gateway datagram against the document and answers with the
    document's lock datagram: the gateway's code is tested against the document alone."""

    def __init__(self) -> None:
        self.expected = [h(n) for n in GATEWAY_SENDS]
        self.answers = [h(n) for n in LOCK_SENDS]
        self.generation = 1
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    max_datagram = 2048

    def exclusive(self) -> asyncio.Lock:
        return self._lock

    async def send(self, datagram: bytes) -> None:
        assert datagram == self.expected.pop(0)
        self._queue.put_nowait(self.answers.pop(0))

    async def receive(self, within: float) -> bytes:
        async with asyncio.timeout(within):
            return await self._queue.get()

    def discard_pending(self) -> None:
        pass

    def wire_time(self, datagram_len: int) -> float:
        return 0.0


async def test_gateway_side_against_the_document() -> None:
    carrier = ScriptedLock()
    rng = vectors.gateway_rng()
    keys = await commission(carrier, h("pairing_secret"), lock_id="lock-1", rng=rng)
    assert keys.long_term_key == h("long_term_key")
    assert keys.device_id == h("device_id")
    session = ClientSession(carrier, keys, lock_id="lock-1", rng=rng)
    put = await session.request(MsgType.PUT_CREDENTIALS, vectors.PUT_BODY)
    poll = await session.request(MsgType.POLL)
    assert put.body == h("reply_put")[4:]
    assert poll.body == h("reply_poll")[4:]
    assert not carrier.expected


async def test_lock_side_against_the_document() -> None:
    engine = make_engine(vectors.lock_rng())
    assert engine.pairing_secret == DOC["pairing_label"]
    for sent, answer in zip(GATEWAY_SENDS, LOCK_SENDS, strict=True):
        assert await engine.handle(h(sent)) == h(answer), sent
    assert [c.credential_id for c in engine.lock.list_credentials()] == ["cred-0001"]


@pytest.mark.parametrize("name", ["data_put", "hello", "pair_proof"])
async def test_document_datagrams_replayed_later_do_nothing(name: str) -> None:
    engine = make_engine(vectors.lock_rng().then(bytes(range(32)), bytes(16), bytes(4)))
    for sent in GATEWAY_SENDS:
        await engine.handle(h(sent))
    before = len(engine.lock.list_credentials()), engine.stats.requests
    reply = await engine.handle(h(name))
    assert (len(engine.lock.list_credentials()), engine.stats.requests) == before
    if name == "data_put":
        assert reply is None and engine.refusals.counts.get("replayed") == 1
