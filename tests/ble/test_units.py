"""The BLE pieces without a radio: segmentation, the profile's records, the mobile-key proof
and the gateway's check of it, the connection slots and the reconnect policy."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from pathlib import Path

import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from drivers.backoff import Backoff
from drivers.ble import mobilekey as mk
from drivers.ble.profile import (
    COMPANY_ID,
    SERVICE_UUID,
    AdvertFlag,
    DeviceInfoRecord,
    LockAdvert,
    advertising_data,
)
from drivers.ble.scanner import parse_advert
from drivers.ble.segment import Reassembler, segment, segment_count
from drivers.ble.slots import ConnectionSlots
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.keys import LinkKeys, save_link_keys
from gateway.mobilekeys import MobileKeyProofCheck
from gateway.models import AccessMethod
from gateway.store.store import Store


# --- segmentation --------------------------------------------------------------------------------
@given(st.binary(min_size=1, max_size=5000), st.integers(min_value=4, max_value=300))
def test_segments_reassemble_to_the_datagram(datagram: bytes, size: int) -> None:
    segs = segment(datagram, size)
    assert all(len(s) <= size for s in segs)
    assert len(segs) == segment_count(len(datagram), size)
    r = Reassembler(65535)
    out = [r.feed(s) for s in segs]
    assert out[-1] == datagram
    assert all(o is None for o in out[:-1])


@given(st.lists(st.binary(max_size=300), max_size=50))
def test_reassembler_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    r = Reassembler(1000)
    for chunk in chunks:
        out = r.feed(chunk)
        assert out is None or 0 < len(out) <= 1000
    assert len(r._buf) <= 1000


def test_a_missing_segment_drops_the_datagram_and_the_next_one_passes() -> None:
    r = Reassembler(4096)
    first = segment(b"a" * 100, 20)
    for s in first[:2] + first[3:]:
        assert r.feed(s) is None
    assert r.stats.refused["gap"] == 1
    assert [r.feed(s) for s in segment(b"b" * 50, 20)][-1] == b"b" * 50


def test_oversize_and_orphans_are_refused() -> None:
    r = Reassembler(64)
    assert [r.feed(s) for s in segment(b"x" * 65, 20)] == [None] * 4
    assert r.stats.refused == {"oversize": 1, "orphan": 3}
    with pytest.raises(ValueError, match="empty"):
        segment(b"", 20)


def test_a_new_first_segment_abandons_a_partial_datagram() -> None:
    r = Reassembler(4096)
    r.feed(segment(b"y" * 60, 20)[0])
    assert r.feed(segment(b"short", 20)[0]) == b"short"
    assert r.stats.refused == {"abandoned": 1}


# --- the profile's records -----------------------------------------------------------------------
def test_the_advertisement_fits_a_legacy_pdu_and_parses_back() -> None:
    device_id = bytes(range(8))
    advert = LockAdvert.for_device(device_id, AdvertFlag.COMMISSIONED | AdvertFlag.ACCESS_REQUEST)
    assert len(advertising_data(advert)) <= 31
    data = AdvertisementData(None, {0x0059: advert.encode()}, {}, [SERVICE_UUID], None, -60, ())
    parsed = parse_advert(data)
    assert parsed == advert
    assert parsed is not None and parsed.short_id == device_id[:5]
    # no service UUID: not ours, whatever the payload
    assert parse_advert(data._replace(service_uuids=[])) is None
    assert parse_advert(data._replace(manufacturer_data={COMPANY_ID: b"\x20" + b"12345"})) is None


def test_device_info_round_trip_ignores_later_fields() -> None:
    rec = DeviceInfoRecord(b"12345678", 4160, 20, AdvertFlag.EVENTS_WAITING)
    assert DeviceInfoRecord.decode(rec.encode()) == rec
    assert DeviceInfoRecord.decode(rec.encode() + b"future") == rec
    with pytest.raises(DecodeError):
        DeviceInfoRecord.decode(b"\x02" + rec.encode()[1:])


# --- the mobile-key proof ------------------------------------------------------------------------
PHONE = os.urandom(32)
PK = mk.public_key_of(PHONE)
LOCK = b"LOCK-001"


def proof(challenge: bytes | None = None, device: bytes = LOCK, key: bytes = PHONE) -> mk.Proof:
    challenge = challenge or os.urandom(16)
    return mk.Proof(challenge, device, mk.sign(key, device, challenge))


def test_a_proof_verifies_only_for_its_key_lock_and_challenge() -> None:
    p = proof()
    assert mk.verify(PK, p)
    assert not mk.verify(mk.public_key_of(os.urandom(32)), p)
    assert not mk.verify(PK, mk.Proof(os.urandom(16), p.device_id, p.signature))
    assert not mk.verify(PK, mk.Proof(p.challenge, b"LOCK-002", p.signature))
    assert mk.Proof.decode(p.encode()) == p
    with pytest.raises(DecodeError):
        mk.Proof.decode(p.encode()[:-1])


def test_public_key_text_forms() -> None:
    text = mk.public_key_text(PK)
    assert mk.parse_public_key_text(text) == PK
    urlsafe = base64.urlsafe_b64encode(PK).rstrip(b"=")
    assert mk.parse_public_key_text(urlsafe) == PK
    with pytest.raises(ValueError, match="32"):
        mk.parse_public_key_text(base64.b64encode(b"short"))
    with pytest.raises(ValueError, match="base64"):
        mk.parse_public_key_text("not base64 !")


@pytest.mark.parametrize(
    "msg",
    [
        mk.KeyHello(PK),
        mk.KeyChallenge(b"c" * 16, LOCK, 1_700_000_000),
        mk.KeyProof(b"s" * 64),
        mk.KeyResult(False, "outside_window"),
    ],
)
def test_key_messages_round_trip(msg: mk.KeyMessage) -> None:
    assert mk.decode(mk.encode(msg)) == msg


@given(st.binary(max_size=120))
def test_key_message_parser_only_raises_decode_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        mk.decode(data)


# --- the gateway's check of a forwarded proof ----------------------------------------------------
def method(mid: str = "mk1", key: bytes = PK) -> AccessMethod:
    return AccessMethod(mid, "g1", "mobile_key", secret=mk.public_key_text(key))


def test_gateway_check_accepts_a_fresh_proof_for_the_commissioned_lock(store: Store) -> None:
    ids = {"front": LOCK, "back": b"LOCK-002"}
    check = MobileKeyProofCheck(ids.get, store.mobile_key_challenges)
    p = proof()
    assert check(method(), p.encode(), "front")
    assert not check(method(), p.encode(), "front")  # replayed
    assert not check(method(), proof().encode(), "back")  # made for another lock
    assert not check(method(key=mk.public_key_of(os.urandom(32))), proof().encode(), "front")
    assert not check(method(), None, "front")
    assert not check(method(), b"garbage", "front")
    assert not check(AccessMethod("x", "g1", "mobile_key", secret=b"!!"), proof().encode(), "front")


def test_gateway_check_lets_one_decision_try_several_methods_of_the_same_key(
    store: Store,
) -> None:
    # a phone key on two grants: the validator asks once per method in one decision
    check = MobileKeyProofCheck({"front": LOCK}.get, store.mobile_key_challenges)
    p = proof().encode()
    assert check(method("mk1"), p, "front")
    assert check(method("mk2"), p, "front")
    assert not check(method("mk1"), p, "front")


def test_attack_proof_forwarded_by_a_lock_with_no_commissioning_record_is_refused(
    store: Store,
) -> None:
    # no link keys for "side-door" (never commissioned, or its keys were removed): there is
    # no device id to hold the proof to, so a proof made at any other lock must not pass
    check = MobileKeyProofCheck({"front": LOCK}.get, store.mobile_key_challenges)
    made_at_front = proof().encode()
    assert not check(method(), made_at_front, "side-door")
    assert check(method(), made_at_front, "front")


def test_attack_proof_replayed_after_a_gateway_restart_is_refused(tmp_path: Path) -> None:
    # a lock that forwards a recorded exchange again, after the gateway restarted
    from gateway.mobilekeys import device_ids_from_keystores, proof_check_for
    from gateway.secrets import SecretRef

    key = SecretRef(file=tmp_path / "store.key")
    recorded = proof().encode()
    with Store.open(tmp_path / "lockgate.db", key) as store:
        save_link_keys(store.keystore("front"), "front", LinkKeys(
            os.urandom(32), os.urandom(32), os.urandom(32), LOCK))
        assert device_ids_from_keystores(store.keystore)("front") == LOCK
        assert proof_check_for(store)(method(), recorded, "front")
    with Store.open(tmp_path / "lockgate.db", key) as store:  # the gateway restarted
        assert not proof_check_for(store)(method(), recorded, "front")
        assert proof_check_for(store)(method(), proof().encode(), "front")


# --- connection slots and the reconnect policy ---------------------------------------------------
class Holder:
    def __init__(self, busy: bool = False) -> None:
        self.busy = busy
        self.asked = 0

    def release_requested(self) -> None:
        self.asked += 1


async def test_slots_limit_queue_and_ask_idle_holders() -> None:
    slots = ConnectionSlots(2)
    a, b, c, d = Holder(), Holder(busy=True), Holder(), Holder()
    await slots.acquire(a)
    await slots.acquire(b)
    waiting_c = asyncio.create_task(slots.acquire(c))
    waiting_d = asyncio.create_task(slots.acquire(d))
    await asyncio.sleep(0)  # one turn of the loop: both tasks run up to their wait
    assert slots.contended
    assert (a.asked, b.asked) == (2, 0)  # only the idle holder is asked, once per waiter
    slots.release(a)
    await asyncio.wait_for(waiting_c, 1)  # first in line first
    assert not waiting_d.done()
    waiting_d.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting_d
    assert not slots.contended
    slots.release(b)
    await slots.acquire(d)
    assert slots.in_use == 2
    assert slots.peak == 2


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    slots = ConnectionSlots(1)
    a, b, c = Holder(busy=True), Holder(), Holder()
    await slots.acquire(a)
    tb = asyncio.create_task(slots.acquire(b))
    tc = asyncio.create_task(slots.acquire(c))
    await asyncio.sleep(0)  # one turn of the loop: both queue up
    slots.release(a)  # hands the slot to b...
    tb.cancel()  # ...which leaves before taking it
    with pytest.raises(asyncio.CancelledError):
        await tb
    await asyncio.wait_for(tc, 1)
    assert slots.holds(c)


def test_reconnect_policy_backs_off_with_jitter_up_to_the_cap() -> None:
    policy = Backoff(0.5, 4.0, jitter=0.5, random=lambda: 1.0)
    assert [policy.next_delay() for _ in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    policy.reset()
    assert Backoff(0.5, 4.0, random=lambda: 0.0).next_delay() == 0.5
    assert policy.next_delay(auth_failure=True) == 2.0  # the maximum, jittered


# --- the test vectors printed in docs/ble.md and docs/mobile-keys.md ------------------------------
def test_documented_vectors() -> None:
    sk = bytes(range(1, 33))
    pk = mk.public_key_of(sk)
    dev = bytes.fromhex("0011223344556677")
    challenge = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
    assert mk.public_key_text(pk) == b"ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
    assert mk.key_id(pk).hex() == "65b60673d6ed884b"
    assert mk.signed_message(dev, mk.key_id(pk), challenge).hex() == (
        "6c6f636b676174652f31206d6f62696c652d6b6579000011223344556677"
        "65b60673d6ed884ba0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    )
    assert mk.sign(sk, dev, challenge).hex() == (
        "22d79ab88ad0e12c3ca4de4f8a2a82d7aa50b9bb1605fb2174fd3be20933ad6d"
        "699a8c02c311761a8a2f485cfecb9967e41bb1c8266ea47cc911b53ecaf23100"
    )
    assert mk.encode(mk.KeyChallenge(challenge, dev, 1767225600)).hex() == (
        "02a0a1a2a3a4a5a6a7a8a9aaabacadaeaf001122334455667700b95569"
    )
    assert mk.encode(mk.KeyResult(True, "valid")).hex() == "04010576616c6964"
    flags = AdvertFlag.COMMISSIONED | AdvertFlag.EVENTS_WAITING
    assert advertising_data(LockAdvert.for_device(dev, flags)).hex() == (
        "020106110754474b434f4c619a8f4b3e5c01002a7d09ffffff130011223344"
    )
    info = DeviceInfoRecord(dev, 4160, 20, AdvertFlag.COMMISSIONED)
    assert info.encode().hex() == "0100112233445566770140101400"
    assert [s.hex() for s in segment(bytes(range(40)), 20)] == [
        "802800000102030405060708090a0b0c0d0e0f10",
        "011112131415161718191a1b1c1d1e1f20212223",
        "0224252627",
    ]
