"""Operator signatures, roles, staleness and replays, without a broker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.clock import FakeClock
from gateway.mqtt.auth import (
    Authoriser,
    OperatorKeysError,
    Role,
    canonical_json,
    load_operator_keys,
    load_private_key,
    private_key_pem,
    sign,
    signing_message,
)
from gateway.mqtt.payloads import Auth, CommandError, ErrorCode
from gateway.store.db import StoreFullError
from tests.mqtt.harness import Operators, write_operator_keys

GW = "gw-1"
TOPIC = "lockgate/gw-1/request/unlock"
ARGS = {"lock_id": "front", "hold_seconds": 5}


class Floors(dict[str, str]):
    """The store's ``meta`` as the Authoriser uses it; counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[dict[str, int]] = []

    async def raise_to(self, values: Mapping[str, int]) -> None:
        self.writes.append(dict(values))
        for key, value in values.items():
            if key not in self or int(self[key]) < value:
                self[key] = str(value)


@pytest.fixture
def ops(tmp_path: Path) -> Operators:
    return write_operator_keys(tmp_path)


class Monotonic:
    """A monotonic clock that moves only when told (the wall clock is a separate FakeClock)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def authoriser(
    ops: Operators,
    clock: FakeClock,
    floors: Floors | None = None,
    mono: Monotonic | None = None,
    max_nonces: int = 10_000,
) -> Authoriser:
    return Authoriser(
        load_operator_keys(ops.path),
        GW,
        floors if floors is not None else Floors(),
        clock.now,
        max_age_s=30,
        max_nonces=max_nonces,
        monotonic=mono or Monotonic(),
    )


def signed(
    ops: Operators,
    who: str,
    clock: FakeClock,
    *,
    args: dict[str, object] = ARGS,
    nonce: str | None = None,
) -> Auth:
    ts = int(clock.now().timestamp() * 1000)
    body = sign(ops.keys[who], who, "unlock", args, gateway_id=GW, topic=TOPIC, ts=ts, nonce=nonce)
    return Auth.model_validate(body)


def refused(
    a: Authoriser,
    auth: Auth | None,
    *,
    args: dict[str, object] = ARGS,
    topic: str = TOPIC,
    command: str = "unlock",
) -> ErrorCode:
    with pytest.raises(CommandError) as info:
        a.check(command, args, auth, topic, Role.OPERATOR)
    return info.value.code


def test_operator_signature_accepted_once(ops: Operators, clock: FakeClock) -> None:
    a = authoriser(ops, clock)
    auth = signed(ops, "olga", clock)
    op = a.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR)
    assert op is not None and op.name == "olga"
    assert refused(a, auth) is ErrorCode.REPLAYED


def test_admin_may_do_what_operators_may_and_viewers_may_not(
    ops: Operators, clock: FakeClock
) -> None:
    a = authoriser(ops, clock)
    assert a.check("unlock", ARGS, signed(ops, "ada", clock), TOPIC, Role.OPERATOR) is not None
    assert refused(a, signed(ops, "vera", clock)) is ErrorCode.FORBIDDEN


def test_unsigned_bad_signature_unknown_key(ops: Operators, clock: FakeClock) -> None:
    a = authoriser(ops, clock)
    assert refused(a, None) is ErrorCode.UNAUTHORISED
    auth = signed(ops, "olga", clock)
    tampered = {**ARGS, "hold_seconds": 3600}
    assert refused(a, auth, args=tampered) is ErrorCode.UNAUTHORISED
    assert refused(a, auth, topic="lockgate/gw-2/request/unlock") is ErrorCode.UNAUTHORISED
    assert refused(a, auth, command="lock") is ErrorCode.UNAUTHORISED
    stranger = Ed25519PrivateKey.generate()
    ts = int(clock.now().timestamp() * 1000)
    fake = Auth.model_validate(
        sign(stranger, "olga", "unlock", ARGS, gateway_id=GW, topic=TOPIC, ts=ts)
    )
    assert refused(a, fake) is ErrorCode.UNAUTHORISED
    nobody = Auth.model_validate({**auth.model_dump(), "operator": "mallory"})
    assert refused(a, nobody) is ErrorCode.UNAUTHORISED
    # none of these used up the genuine command
    assert a.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR) is not None


L = 2**252 + 27742317777372353535851937790883648493
"""The order of Ed25519's base point: ``S`` and ``S + L`` are the same scalar, only one is
the canonical encoding."""


def test_attack_malformed_and_malleated_signatures_are_refused(
    ops: Operators, clock: FakeClock
) -> None:
    # Verification goes through libsodium, which takes only canonical encodings: a signature
    # bent into another valid-looking one (S + L), zeros, or the right bytes on another
    # message are all "bad signature", and none of them uses up the genuine command.
    a = authoriser(ops, clock)
    auth = signed(ops, "olga", clock)
    sig = auth.signature()
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + L).to_bytes(32, "little")
    for bad in (malleated, bytes(64), sig[:32] + bytes(32), bytes(32) + sig[32:]):
        forged = Auth.model_validate(
            {**auth.model_dump(), "sig": base64.b64encode(bad).decode()}
        )
        assert refused(a, forged) is ErrorCode.UNAUTHORISED
    assert a.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR) is not None


def test_stale_both_ways(ops: Operators, clock: FakeClock) -> None:
    a = authoriser(ops, clock)
    old = signed(ops, "olga", clock)
    clock.advance(31)
    assert refused(a, old) is ErrorCode.STALE
    ahead = signed(ops, "olga", clock)
    clock.advance(-62)  # the gateway's clock is now 62 s behind the signer's
    assert refused(a, ahead) is ErrorCode.STALE


async def test_a_replay_after_a_restart_is_refused_by_the_persisted_floor(
    ops: Operators, clock: FakeClock
) -> None:
    floors = Floors()
    first = authoriser(ops, clock, floors)
    auth = signed(ops, "olga", clock)
    first.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR)
    await first.record()
    assert floors["mqtt.auth_floor.olga"] == str(auth.ts)
    restarted = authoriser(ops, clock, floors)  # empty nonce cache
    assert refused(restarted, auth) is ErrorCode.REPLAYED
    clock.advance(0.001)
    assert restarted.check("unlock", ARGS, signed(ops, "olga", clock), TOPIC, Role.OPERATOR)


def test_within_a_run_out_of_order_timestamps_are_fine(ops: Operators, clock: FakeClock) -> None:
    a = authoriser(ops, clock)
    earlier = signed(ops, "olga", clock)
    clock.advance(2)
    later = signed(ops, "olga", clock)
    assert a.check("unlock", ARGS, later, TOPIC, Role.OPERATOR)
    assert a.check("unlock", ARGS, earlier, TOPIC, Role.OPERATOR)


def test_nonce_cache_holds_only_the_window(ops: Operators, clock: FakeClock) -> None:
    mono = Monotonic()
    a = authoriser(ops, clock, mono=mono, max_nonces=3)
    for _ in range(3):
        clock.advance(0.01)
        a.check("unlock", ARGS, signed(ops, "olga", clock), TOPIC, Role.OPERATOR)
    assert refused(a, signed(ops, "olga", clock, nonce="x" * 16)) is ErrorCode.RATE_LIMITED
    clock.advance(31)
    assert refused(a, signed(ops, "olga", clock)) is ErrorCode.RATE_LIMITED, (
        "the wall clock alone does not empty the cache"
    )
    mono.t += 31  # the old ones fall out of the window, on monotonic time
    assert a.check("unlock", ARGS, signed(ops, "olga", clock), TOPIC, Role.OPERATOR)


def test_attack_forgotten_nonce_replayed_after_the_wall_clock_steps_back(
    ops: Operators, clock: FakeClock
) -> None:
    """Issue 10, finding 2, at the Authoriser: the nonce leaves the cache (monotonic age),
    its ``ts`` becomes the operator's live floor, so a wall-clock step back that makes the
    recording look fresh again does not make it acceptable."""
    mono = Monotonic()
    floors = Floors()
    a = authoriser(ops, clock, floors, mono)
    t0 = clock.now()
    recorded = signed(ops, "olga", clock)
    assert a.check("unlock", ARGS, recorded, TOPIC, Role.OPERATOR)
    mono.t += 31
    clock.advance(31)
    assert a.floor("olga") == recorded.ts, "the expired nonce's ts is the live floor"
    clock.set(t0)  # the step back
    assert refused(a, recorded) is ErrorCode.REPLAYED
    # A fresh command (above the floor) is fine, whatever the wall clock says.
    clock.advance(0.5)
    assert a.check("unlock", ARGS, signed(ops, "olga", clock), TOPIC, Role.OPERATOR)


def test_unsigned_reads_pass_without_a_role(ops: Operators, clock: FakeClock) -> None:
    assert authoriser(ops, clock).check("status", {}, None, TOPIC, None) is None


def test_canonical_encoding_is_stable() -> None:
    assert (
        canonical_json({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'.encode()
    )
    msg = signing_message("unlock", {"lock_id": "x"}, 5, "n" * 16, "gw", "t")
    assert msg.startswith(b"lockgate-command-v1\n{")
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})


def test_private_key_formats_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    assert load_private_key(private_key_pem(key)).public_key() == key.public_key()
    raw = key.private_bytes_raw()
    assert load_private_key(base64.b64encode(raw)).public_key() == key.public_key()
    with pytest.raises(ValueError, match="neither"):
        load_private_key(b"not a key!")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[operator]]\nname="a"\npublic_key="AAAA"\nrole="operator"\n', "32-byte"),
        ('[[operator]]\nname="a"\npublic_key="%%"\nrole="operator"\n', "base64"),
        ('[[operator]]\nname="a"\npublic_key="x"\nrole="root"\n', "operator.0.role"),
        ("[[operator]]\nname=", "operators.toml"),
        ('[[operator]]\nname="a"\npublic_key="x"\nrole="viewer"\ncolour="red"\n', "colour"),
    ],
)
def test_bad_operator_keys_files_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "operators.toml"
    path.write_text(text)
    with pytest.raises(OperatorKeysError, match=problem):
        load_operator_keys(path)


def test_duplicate_operator_names_refused(tmp_path: Path, ops: Operators) -> None:
    text = ops.path.read_text()
    olga = text[text.index('[[operator]]\nname = "olga"') :].split("\n\n")[0]
    path = tmp_path / "dup.toml"
    path.write_text(text + "\n" + olga + "\n")
    with pytest.raises(OperatorKeysError, match="twice"):
        load_operator_keys(path)


async def test_the_floor_is_on_disk_only_once_recorded_and_one_write_serves_many(
    ops: Operators, clock: FakeClock
) -> None:
    floors = Floors()
    a = authoriser(ops, clock, floors)
    accepted = []
    for _ in range(3):
        clock.advance(0.01)
        auth = signed(ops, "olga", clock)
        assert a.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR)
        accepted.append(auth.ts)
    assert floors.writes == [], "check claims in memory only"
    await asyncio.gather(a.record(), a.record(), a.record())
    assert floors.writes == [{"mqtt.auth_floor.olga": max(accepted)}], "one write for all"
    await a.record()  # nothing new: no write
    assert len(floors.writes) == 1
    restarted = authoriser(ops, clock, floors)
    assert refused(restarted, signed_at(ops, clock, max(accepted))) is ErrorCode.REPLAYED


class FailingFloors(Floors):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def raise_to(self, values: Mapping[str, int]) -> None:
        if self.fail:
            raise StoreFullError("the disk is full")
        await super().raise_to(values)


async def test_a_floor_that_cannot_be_written_fails_record_and_is_written_later(
    ops: Operators, clock: FakeClock
) -> None:
    floors = FailingFloors()
    a = authoriser(ops, clock, floors)
    first = signed(ops, "olga", clock)
    a.check("unlock", ARGS, first, TOPIC, Role.OPERATOR)
    with pytest.raises(StoreFullError):
        await a.record()  # the caller must not run the command
    assert refused(a, first) is ErrorCode.REPLAYED, "claimed all the same"
    floors.fail = False
    clock.advance(0.01)
    second = signed(ops, "vera", clock)
    a.check("unlock", ARGS, second, TOPIC, None)
    await a.record()
    assert floors == {
        "mqtt.auth_floor.olga": str(first.ts),
        "mqtt.auth_floor.vera": str(second.ts),
    }, "the failed floor went with the next write"


class GatedFloors(Floors):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def raise_to(self, values: Mapping[str, int]) -> None:
        await self.gate.wait()
        await super().raise_to(values)


async def test_record_waits_for_the_write_and_a_caller_leaving_does_not_stop_it(
    ops: Operators, clock: FakeClock
) -> None:
    floors = GatedFloors()
    a = authoriser(ops, clock, floors)
    auth = signed(ops, "olga", clock)
    a.check("unlock", ARGS, auth, TOPIC, Role.OPERATOR)
    leaving = asyncio.create_task(a.record())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(a.record())
    await asyncio.sleep(0)
    assert not waiting.done()
    leaving.cancel()
    floors.gate.set()
    async with asyncio.timeout(5):
        await waiting
    assert floors["mqtt.auth_floor.olga"] == str(auth.ts)


def signed_at(ops: Operators, clock: FakeClock, ts: int) -> Auth:
    body = sign(ops.keys["olga"], "olga", "unlock", ARGS, gateway_id=GW, topic=TOPIC, ts=ts)
    return Auth.model_validate(body)
