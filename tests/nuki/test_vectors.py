"""The simulator and the driver against the hex examples of Nuki's Smart Lock API V2.1 (§9).

Each test runs our code with the example's keys and nonces injected and compares the bytes
with the document's, byte for byte (vectors in ``vectors.py``; the PDF is never read here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from lockgate_sim.nuki.engine import LinkState, NukiEngine
from lockgate_sim.nuki.model import NukiLockModel

from drivers.nuki import crypto, wire
from drivers.nuki.client import NukiClient
from drivers.nuki.messages import ID_TYPE_BRIDGE, KeyturnerStates, LockAction, LockState
from drivers.nuki.pairing import pair
from drivers.nuki.session import Channel, NukiKeys, NukiSession
from tests.nuki import vectors as v
from tests.nuki.memory import MemoryTransport, Script

SHARED = v.unhex(v.SHARED_KEY)
LOCK_PUBLIC = wire.decode_plain(v.unhex(*v.SL_PUBLIC_KEY_INDICATIONS)).payload
AUTH_ID_PAYLOAD = wire.decode_plain(v.unhex(*v.SL_AUTHORIZATION_ID_INDICATIONS)).payload
AUTH_DATA_PAYLOAD = wire.decode_plain(v.unhex(v.CL_AUTHORIZATION_DATA)).payload


@dataclass(frozen=True)
class SpecLockKey:
    """The example's lock key: its public half is printed, its private half is not, so the
    lock's side of dh1+kdf1 is the printed shared key (the client side computes it for real
    in ``test_dh_and_kdf``)."""

    public: bytes = LOCK_PUBLIC

    def shared_with(self, peer_public: bytes) -> bytes:
        assert peer_public == v.unhex(v.CL_PUBLIC_KEY)
        return SHARED


def test_crc_and_plain_framing() -> None:
    assert wire.encode_plain(0x0001, wire.u16(0x0003)) == v.unhex(v.CL_REQUEST_PUBLIC_KEY)
    assert wire.encode_plain(0x000E, b"\x00") == v.unhex(v.SL_STATUS_COMPLETE)
    assert crypto.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value


def test_dh_and_kdf() -> None:
    private = v.unhex(v.CL_PRIVATE_KEY)
    assert crypto.public_key(private) == v.unhex(v.CL_PUBLIC_KEY)
    assert crypto.dh1(private, LOCK_PUBLIC) == v.unhex(v.DH_KEY)
    assert crypto.shared_key(private, LOCK_PUBLIC) == SHARED


def test_the_restored_lines_verify() -> None:
    """19b: CRC and HMAC of the Authorization-ID message hold with the restored digits."""
    mac, body = AUTH_ID_PAYLOAD[:32], AUTH_ID_PAYLOAD[32:84]
    nonce_a = AUTH_DATA_PAYLOAD[69:101]
    assert crypto.authentic(SHARED, mac, body, nonce_a)
    damaged = list(v.SL_AUTHORIZATION_ID_INDICATIONS)
    for guess in range(4096):
        damaged[1] = f"02F45681B4067{guess:03X}1D46E6E15EDF0200000083B3"
        try:
            wire.decode_plain(v.unhex(*damaged))
        except wire.WireError:
            continue
        assert f"{guess:03X}" == "C66"


async def test_pairing_reproduces_the_example_on_both_sides() -> None:
    model = NukiLockModel(pairing_mode=True, next_auth_id=v.AUTHORIZATION_ID)
    lock_nonces = Script(
        wire.decode_plain(v.unhex(*v.SL_CHALLENGE_1_INDICATIONS)).payload,
        wire.decode_plain(v.unhex(*v.SL_CHALLENGE_2_INDICATIONS)).payload,
        AUTH_ID_PAYLOAD[52:84],
    )
    engine = NukiEngine(model, key=SpecLockKey(), rng=lock_nonces, uuid=AUTH_ID_PAYLOAD[36:52])
    transport = MemoryTransport(engine)
    keys = await pair(
        transport,
        app_id=0,
        name="Marc (Test)",
        within=1.0,
        rng=Script(AUTH_DATA_PAYLOAD[69:101]),
        private_key=v.unhex(v.CL_PRIVATE_KEY),
        id_type=0,
    )
    assert [data for _, data in transport.sent] == [
        v.unhex(v.CL_REQUEST_PUBLIC_KEY),
        v.unhex(v.CL_SEND_PUBLIC_KEY),
        v.unhex(v.CL_AUTHENTICATOR),
        v.unhex(v.CL_AUTHORIZATION_DATA),
        v.unhex(v.CL_AUTHORIZATION_ID_CONFIRMATION),
    ]
    assert [data for _, data in transport.received] == [
        v.unhex(*v.SL_PUBLIC_KEY_INDICATIONS),
        v.unhex(*v.SL_CHALLENGE_1_INDICATIONS),
        v.unhex(*v.SL_CHALLENGE_2_INDICATIONS),
        v.unhex(*v.SL_AUTHORIZATION_ID_INDICATIONS),
        v.unhex(v.SL_STATUS_COMPLETE),
    ]
    assert all(channel is Channel.PAIRING for channel, _ in transport.sent)
    assert keys.auth_id == v.AUTHORIZATION_ID
    assert keys.shared_key == SHARED
    assert model.auths[2].name == "Marc (Test)"
    assert not model.pairing_mode


def _paired_engine(rng: Script) -> tuple[NukiEngine, NukiLockModel]:
    at = datetime(2016, 3, 7, 8, 15, 30, tzinfo=UTC)
    model = NukiLockModel(now=lambda: at)
    engine = NukiEngine(model, key=SpecLockKey(), rng=rng, uuid=bytes(16))
    from lockgate_sim.nuki.model import Authorization

    model.auths[2] = Authorization(2, SHARED, "Marc (Test)", 0, 0)
    return engine, model


def _keys() -> NukiKeys:
    return NukiKeys(2, v.unhex(v.CL_PRIVATE_KEY), LOCK_PUBLIC, app_id=0)


async def test_read_lock_state_request_is_sealed_as_in_the_example() -> None:
    nonce = v.unhex(v.REQUEST_STATES_SEALED)[:24]
    sealed = wire.encode_sealed(SHARED, 2, 0x0001, wire.u16(0x000C), nonce)
    assert sealed == v.unhex(v.REQUEST_STATES_SEALED)
    inner = crypto.open_sealed(SHARED, nonce, sealed[30:])
    assert inner == v.unhex(v.REQUEST_STATES_PLAIN)
    # the lock's answer, as five indications, opens to the example's states
    answer = wire.decode_sealed(SHARED, v.unhex(*v.SL_STATES_INDICATIONS))
    assert answer.command == 0x000C
    assert answer.payload == v.unhex(v.SL_STATES_DECRYPTED)
    states = KeyturnerStates.decode(answer.payload)
    assert (states.nuki_state, states.lock_state, states.trigger) == (2, LockState.LOCKED, 0)
    assert states.time == datetime(2016, 3, 7, 8, 15, 30, tzinfo=UTC)
    assert states.tz_offset_min == 60
    assert not states.battery_critical


async def test_the_simulator_answers_the_state_request() -> None:
    engine, _ = _paired_engine(Script(bytes(24)))
    link = LinkState()
    [reply] = engine.sealed(link, v.unhex(v.REQUEST_STATES_SEALED))
    states = KeyturnerStates.decode(wire.decode_sealed(SHARED, reply).payload)
    assert states.lock_state == LockState.LOCKED
    assert states.time == datetime(2016, 3, 7, 8, 15, 30, tzinfo=UTC)


async def test_perform_unlock_reproduces_the_example() -> None:
    challenge_nonce = v.unhex(*v.SL_UNLOCK_CHALLENGE_INDICATIONS)[:24]
    engine, model = _paired_engine(
        Script(v.unhex(v.UNLOCK_CHALLENGE), challenge_nonce, *(bytes(24),) * 3)
    )
    transport = MemoryTransport(engine)
    client_nonces = Script(
        v.unhex(v.REQUEST_CHALLENGE_SEALED)[:24], v.unhex(v.LOCK_ACTION_SEALED)[:24]
    )
    session = NukiSession(transport, _keys(), pin=0, rng=client_nonces)
    await NukiClient(session).lock_action(LockAction.UNLOCK)

    assert [data for _, data in transport.sent] == [
        v.unhex(v.REQUEST_CHALLENGE_SEALED),
        v.unhex(v.LOCK_ACTION_SEALED),
    ]
    assert crypto.open_sealed(SHARED, *_split(v.unhex(v.REQUEST_CHALLENGE_SEALED))) == v.unhex(
        v.REQUEST_CHALLENGE_PLAIN
    )
    assert crypto.open_sealed(SHARED, *_split(v.unhex(v.LOCK_ACTION_SEALED))) == v.unhex(
        v.LOCK_ACTION_PLAIN
    )
    replies = [data for _, data in transport.received]
    assert replies[0] == v.unhex(*v.SL_UNLOCK_CHALLENGE_INDICATIONS)
    plain = [crypto.open_sealed(SHARED, *_split(r)) for r in replies[1:]]
    assert plain[0] == v.unhex(v.SL_STATUS_ACCEPTED_PLAIN)
    assert plain[-1] == v.unhex(v.SL_STATUS_COMPLETE_PLAIN)
    assert model.lock_state == LockState.UNLOCKED


def test_the_unlocking_and_unlocked_states_of_the_example_parse() -> None:
    unlocking = KeyturnerStates.decode(v.unhex(v.SL_STATES_UNLOCKING))
    unlocked = KeyturnerStates.decode(v.unhex(v.SL_STATES_UNLOCKED))
    assert unlocking.lock_state == LockState.UNLOCKING
    assert unlocked.lock_state == LockState.UNLOCKED
    assert unlocking.time == datetime(2016, 3, 7, 8, 24, 32, tzinfo=UTC)
    assert unlocked.time == datetime(2016, 3, 7, 8, 24, 44, tzinfo=UTC)
    assert unlocking.tz_offset_min == unlocked.tz_offset_min == 60


def _split(message: bytes) -> tuple[bytes, bytes]:
    return message[:24], message[30:]


def test_reassembly_of_the_examples_indications() -> None:
    sealed = wire.Reassembler(sealed=True)
    chunks = [v.unhex(c) for c in v.SL_UNLOCK_CHALLENGE_INDICATIONS]
    out = [m for c in chunks for m in sealed.feed(c)]
    assert out == [b"".join(chunks)]
    plain = wire.Reassembler(sealed=False)
    chunks = [v.unhex(c) for c in v.SL_AUTHORIZATION_ID_INDICATIONS]
    assert [m for c in chunks[:-1] for m in plain.feed(c)] == []
    assert plain.feed(chunks[-1]) == [b"".join(chunks)]


@pytest.mark.parametrize("cut", [1, 7, 20, 29, 30, 31])
def test_reassembly_of_back_to_back_messages(cut: int) -> None:
    one = v.unhex(*v.SL_STATES_INDICATIONS)
    two = v.unhex(*v.SL_UNLOCK_CHALLENGE_INDICATIONS)
    stream = one + two
    r = wire.Reassembler(sealed=True)
    got = [m for i in range(0, len(stream), cut) for m in r.feed(stream[i : i + cut])]
    assert got == [one, two]


def test_bridge_is_the_gateways_id_type() -> None:
    assert ID_TYPE_BRIDGE == 1
