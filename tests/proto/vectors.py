"""The test vectors of docs/protocol.md §11: inputs, and how to regenerate the outputs.

``python tests/proto/vectors.py`` prints the block that goes between the ``vectors`` markers
of the document. Both sides' tests read the document and check their code against it.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT, ROOT / "firmware-sim"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from drivers.lockproto import crypto  # noqa: E402
from drivers.lockproto.client import ClientSession  # noqa: E402
from drivers.lockproto.cobs import cobs_encode  # noqa: E402
from drivers.lockproto.crc import crc16  # noqa: E402
from drivers.lockproto.framing import Frame, encode_frame  # noqa: E402
from drivers.lockproto.messages import MsgType, Reply, Request, encode_reply, encode_request  # noqa: E402
from drivers.lockproto.pairing import commission  # noqa: E402
from drivers.lockproto.records import (  # noqa: E402
    BatchResults,
    CredentialRecord,
    PollFlag,
    PollReply,
    PutCredentials,
    WireKind,
)
from drivers.lockproto.status import Status  # noqa: E402
from tests.proto.loopback import FixedRng, LoopbackCarrier, make_engine  # noqa: E402

DOC = ROOT / "docs" / "protocol.md"
BEGIN, END = "<!-- vectors:begin -->", "<!-- vectors:end -->"

# --- inputs -----------------------------------------------------------------------------
PAIRING_SECRET = bytes(range(0xA0, 0xB0))
GATEWAY_STATIC = bytes(range(0x01, 0x21))
LOCK_STATIC = bytes(range(0x21, 0x41))
DEVICE_ID = bytes.fromhex("4c47000000000001")
PAIR_NONCE_GATEWAY = bytes(range(0x41, 0x51))
PAIR_NONCE_LOCK = bytes(range(0x51, 0x61))
GATEWAY_EPHEMERAL = bytes(range(0x61, 0x81))
HELLO_NONCE_GATEWAY = bytes(range(0x81, 0x91))
LOCK_EPHEMERAL = bytes(range(0x91, 0xB1))
HELLO_NONCE_LOCK = bytes(range(0xB1, 0xC1))
SESSION_ID = bytes.fromhex("78563412")
ADDRESS = 0x05

PUT_BODY = PutCredentials(
    (
        CredentialRecord(
            WireKind.CODE, "cred-0001", bytes.fromhex("0102030405060708"), b"123456",
            1767225600, 1769904000,
        ),
    )
).encode()


def gateway_rng() -> FixedRng:
    return FixedRng(GATEWAY_STATIC, PAIR_NONCE_GATEWAY, GATEWAY_EPHEMERAL, HELLO_NONCE_GATEWAY)


def lock_rng() -> FixedRng:
    """First boot (static key, device id, pairing secret), pairing, one HELLO."""
    return FixedRng(
        LOCK_STATIC, DEVICE_ID, PAIRING_SECRET, PAIR_NONCE_LOCK,
        LOCK_EPHEMERAL, HELLO_NONCE_LOCK, SESSION_ID,
    )


DATAGRAM_NAMES = [
    "pair_start", "pair_challenge", "pair_proof", "pair_done",
    "hello", "hello_reply",
    "data_put", "data_put_reply", "data_poll", "data_poll_reply",
]


async def _run() -> list[bytes]:
    carrier = LoopbackCarrier(make_engine(lock_rng()))
    rng = gateway_rng()
    keys = await commission(carrier, PAIRING_SECRET, lock_id="lock-1", rng=rng)
    session = ClientSession(carrier, keys, lock_id="lock-1", rng=rng)
    await session.request(MsgType.PUT_CREDENTIALS, PUT_BODY)
    await session.request(MsgType.POLL)
    return [data for _, data in carrier.log]


def generate() -> dict[str, str]:
    datagrams = asyncio.run(_run()) if _no_loop() else None
    assert datagrams is not None, "call agenerate() inside an event loop"
    return _assemble(datagrams)


async def agenerate() -> dict[str, str]:
    return _assemble(await _run())


def _no_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def _assemble(datagrams: list[bytes]) -> dict[str, str]:
    assert len(datagrams) == len(DATAGRAM_NAMES)
    dg = dict(zip(DATAGRAM_NAMES, datagrams, strict=True))
    gw_pub = crypto.public_bytes(crypto.private_key(GATEWAY_STATIC))
    lock_pub = crypto.public_bytes(crypto.private_key(LOCK_STATIC))
    ss = crypto.dh(GATEWAY_STATIC, lock_pub)
    pair_th = crypto.pairing_transcript(
        (1, 1), 1, PAIR_NONCE_GATEWAY, gw_pub, DEVICE_ID, PAIR_NONCE_LOCK, lock_pub
    )
    pk = crypto.pairing_keys(PAIRING_SECRET, ss, pair_th)
    gw_eph_pub = crypto.public_bytes(crypto.private_key(GATEWAY_EPHEMERAL))
    lock_eph_pub = crypto.public_bytes(crypto.private_key(LOCK_EPHEMERAL))
    sid = int.from_bytes(SESSION_ID, "little")
    gw_id = crypto.gateway_id(gw_pub)
    th = crypto.session_transcript(
        (1, 1), 1, gw_id, DEVICE_ID, sid, HELLO_NONCE_GATEWAY, HELLO_NONCE_LOCK, gw_eph_pub,
        lock_eph_pub,
    )
    ee = crypto.dh(GATEWAY_EPHEMERAL, lock_eph_pub)
    sk = crypto.session_keys(pk.long_term_key, ee, ss, th)
    put_reply = encode_reply(
        Reply(MsgType.PUT_CREDENTIALS, 1, Status.OK, BatchResults((Status.OK,)).encode())
    )
    poll_reply = encode_reply(
        Reply(MsgType.POLL, 2, Status.OK, PollReply(PollFlag(0), 0).encode())
    )
    v: dict[str, bytes | str] = {
        "crc16_123456789": crc16(b"123456789").to_bytes(2, "big"),
        "cobs_in": bytes.fromhex("11220033"),
        "cobs_out": cobs_encode(bytes.fromhex("11220033")),
        "pairing_secret": PAIRING_SECRET,
        "pairing_label": crypto.format_pairing_secret(PAIRING_SECRET),
        "gateway_static_private": GATEWAY_STATIC,
        "gateway_static_public": gw_pub,
        "gateway_id": gw_id,
        "lock_static_private": LOCK_STATIC,
        "lock_static_public": lock_pub,
        "device_id": DEVICE_ID,
        "static_shared": ss,
        "pair_nonce_gateway": PAIR_NONCE_GATEWAY,
        "pair_nonce_lock": PAIR_NONCE_LOCK,
        "pair_transcript": pair_th,
        "pair_proof_key": pk.proof_key,
        "long_term_key": pk.long_term_key,
        "pair_start": dg["pair_start"],
        "pair_challenge": dg["pair_challenge"],
        "pair_proof": dg["pair_proof"],
        "pair_done": dg["pair_done"],
        "gateway_ephemeral_private": GATEWAY_EPHEMERAL,
        "gateway_ephemeral_public": gw_eph_pub,
        "hello_nonce_gateway": HELLO_NONCE_GATEWAY,
        "lock_ephemeral_private": LOCK_EPHEMERAL,
        "lock_ephemeral_public": lock_eph_pub,
        "hello_nonce_lock": HELLO_NONCE_LOCK,
        "session_id_le": SESSION_ID,
        "ephemeral_shared": ee,
        "session_transcript": th,
        "key_gateway_to_lock": sk.gateway_to_lock,
        "key_lock_to_gateway": sk.lock_to_gateway,
        "confirm_key": sk.confirm_key,
        "hello": dg["hello"],
        "hello_reply": dg["hello_reply"],
        "request_put": encode_request(Request(MsgType.PUT_CREDENTIALS, 1, PUT_BODY)),
        "data_put": dg["data_put"],
        "reply_put": put_reply,
        "data_put_reply": dg["data_put_reply"],
        "request_poll": encode_request(Request(MsgType.POLL, 2)),
        "data_poll": dg["data_poll"],
        "reply_poll": poll_reply,
        "data_poll_reply": dg["data_poll_reply"],
        "frame_hello_address_5": encode_frame(Frame(ADDRESS, False, dg["hello"])),
        "frame_hello_reply_address_5": encode_frame(Frame(ADDRESS, True, dg["hello_reply"])),
    }
    return {k: val if isinstance(val, str) else val.hex() for k, val in v.items()}


def render(vectors: dict[str, str]) -> str:
    width = max(len(k) for k in vectors)
    lines = [f"{k.ljust(width)} = {val}" for k, val in vectors.items()]
    return "\n".join(["```text", *lines, "```"])


def read_doc(path: Path = DOC) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END)
    found: dict[str, str] = {}
    for line in text[start:end].splitlines():
        m = re.fullmatch(r"([a-z0-9_]+)\s+=\s+(\S+)", line.strip())
        if m:
            found[m.group(1)] = m.group(2)
    return found


if __name__ == "__main__":
    print(render(generate()))
