"""Secret arguments sealed to the gateway's command key: the broker, and anyone the ACL lets
read request topics, never sees a PIN or a pairing secret."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from lockgate_sim.broker import Mosquitto

from gateway.mqtt.auth import new_nonce
from gateway.mqtt.sealed import (
    KEY_NAME,
    KEYSTORE_ID,
    Opener,
    SealError,
    public_key_b64,
    seal,
)
from tests.mqtt.harness import (
    Operators,
    Requester,
    Seal,
    Site,
    Watcher,
    broker_options,
    running_site,
)
from tests.mqtt.test_commands import PIN, PairableSim, error_of, load_one_code, observe


# --- the format ------------------------------------------------------------------------------
def test_a_sealed_value_opens_only_for_its_gateway_command_field_and_nonce() -> None:
    key = X25519PrivateKey.generate()
    opener = Opener(key, "gw-a")
    nonce = new_nonce()
    blob = base64.b64decode(
        seal(
            key.public_key(),
            "1234",
            gateway_id="gw-a",
            command="test_credential",
            field="secret",
            nonce=nonce,
        )["sealed"]
    )
    assert len(blob) == 32 + 12 + len("1234") + 16
    assert opener.open(blob, command="test_credential", field="secret", nonce=nonce) == "1234"
    wrong = [
        (Opener(key, "gw-b"), "test_credential", "secret", nonce),
        (Opener(X25519PrivateKey.generate(), "gw-a"), "test_credential", "secret", nonce),
        (opener, "commission", "secret", nonce),
        (opener, "test_credential", "pairing_secret", nonce),
        (opener, "test_credential", "secret", new_nonce()),
    ]
    for who, command, field, n in wrong:
        with pytest.raises(SealError):
            who.open(blob, command=command, field=field, nonce=n)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealError):
        opener.open(tampered, command="test_credential", field="secret", nonce=nonce)
    with pytest.raises(SealError):  # a low-order point as the ephemeral key
        opener.open(bytes(60), command="test_credential", field="secret", nonce=nonce)


# --- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "command", "field", "secret"),
    [("olga", "test_credential", "secret", PIN), ("ada", "commission", "pairing_secret", "p-1")],
)
async def test_plaintext_secrets_refused_even_when_signed(
    site: Site, requester: Requester, who: str, command: str, field: str, secret: str
) -> None:
    before = observe(site)
    r = await requester.request(
        command, {"lock_id": "front", field: secret}, sign_as=site.operators.signer(who)
    )
    assert error_of(r) == ("bad_payload", f"args.{field}")
    assert "must be sealed to the gateway's command_key" in r["error"]["message"]
    assert secret not in json.dumps(r)
    assert observe(site) == before


async def test_a_sealed_blob_moved_into_another_request_is_refused(
    site: Site, requester: Requester
) -> None:
    await load_one_code(site)
    olga = site.operators.signer("olga")
    sealed_for = new_nonce()
    args = await requester.sealed_args(
        "test_credential", {"lock_id": "front", "secret": Seal(PIN)}, sealed_for
    )
    before = observe(site)
    r = await requester.request("test_credential", args, sign_as=olga, nonce=new_nonce())
    assert error_of(r) == ("bad_payload", "args.secret")
    assert "cannot be opened" in r["error"]["message"]
    assert observe(site) == before  # not even the replay floor moved
    # the request it was sealed for goes through
    r = await requester.request("test_credential", args, sign_as=olga, nonce=sealed_for)
    assert r["status"] == "ok", r
    assert r["data"]["allow"] is True


async def test_a_blob_sealed_to_another_gateways_key_is_refused(
    site: Site, requester: Requester
) -> None:
    other = public_key_b64(X25519PrivateKey.generate().public_key())
    before = observe(site)
    r = await requester.request(
        "test_credential",
        {"lock_id": "front", "secret": Seal(PIN, key=other)},
        sign_as=site.operators.signer("olga"),
    )
    assert error_of(r) == ("bad_payload", "args.secret")
    assert "cannot be opened" in r["error"]["message"]
    assert observe(site) == before


async def test_role_is_checked_before_anything_is_opened(site: Site, requester: Requester) -> None:
    other = public_key_b64(X25519PrivateKey.generate().public_key())
    r = await requester.request(
        "commission",
        {"lock_id": "front", "pairing_secret": Seal("x", key=other)},
        sign_as=site.operators.signer("olga"),
    )
    assert error_of(r) == ("forbidden", None)


async def test_an_opened_secret_too_long_is_refused(site: Site, requester: Requester) -> None:
    before = observe(site)
    r = await requester.request(
        "test_credential",
        {"lock_id": "front", "secret": Seal("9" * 65)},
        sign_as=site.operators.signer("olga"),
    )
    assert error_of(r) == ("bad_payload", "args.secret")
    assert observe(site) == before


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# --- the key ---------------------------------------------------------------------------------
async def test_state_and_status_carry_the_command_key(site: Site, requester: Requester) -> None:
    async with Watcher(broker_options(site.broker), site.topics.state) as w:
        await w.until(lambda: w.json(site.topics.state) is not None)
        retained = w.json(site.topics.state)["command_key"]
    r = await requester.request("status")
    assert r["status"] == "ok" and r["data"]["command_key"] == retained
    assert retained == site.plane.opener.public_b64
    assert len(base64.b64decode(retained, validate=True)) == 32


async def test_the_command_key_survives_a_restart_and_is_stored_encrypted(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with running_site(tmp_path / "gw", broker, operators) as site:
        first = site.plane.opener.public_b64
        raw = site.gw.store.keystore(KEYSTORE_ID).get(KEY_NAME)
        db = site.gw.config.store.path
    assert raw is not None and len(raw) == 32
    private = X25519PrivateKey.from_private_bytes(raw)
    assert public_key_b64(private.public_key()) == first
    assert db.exists() and not files_containing(tmp_path, raw)  # encrypted at rest
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert not files_containing(tmp_path, pem)
    async with running_site(tmp_path / "gw", broker, operators) as site:
        assert site.plane.opener.public_b64 == first
        async with Requester(broker_options(broker), site.topics, identity=site.identity) as r:
            resp = await r.request("status")
        assert resp["data"]["command_key"] == first


# --- nothing in clear on the broker ----------------------------------------------------------
async def test_no_secret_in_any_published_payload(
    tmp_path: Path, broker: Mosquitto, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    PairableSim.paired_with = []
    pin, pairing = "739184", "pair-secret-5521"
    async with (
        running_site(tmp_path / "gw", broker, operators, driver=PairableSim) as site,
        Watcher(broker_options(broker), "#") as everything,
        Requester(broker_options(broker), site.topics, identity=site.identity) as r,
    ):
        resp = await r.request(
            "test_credential",
            {"lock_id": "front", "secret": Seal(pin)},
            sign_as=operators.signer("olga"),
        )
        assert resp["status"] == "ok", resp
        resp = await r.request(
            "commission",
            {"lock_id": "front", "pairing_secret": Seal(pairing)},
            sign_as=operators.signer("ada"),
        )
        assert resp["status"] == "ok", resp
        requests = site.topics.request_prefix
        await everything.until(
            lambda: sum(1 for t, _, _ in everything.history if t.startswith(requests)) >= 2
        )
        await everything.until(
            lambda: sum(1 for t, _, _ in everything.history if "/response/" in t) >= 3
        )
    assert PairableSim.paired_with == [pairing]
    seen = [t for t, _, _ in everything.history]
    assert site.topics.request("test_credential") in seen
    assert site.topics.request("commission") in seen
    for topic, body, _ in everything.history:
        for secret in (pin, pairing):
            assert secret.encode() not in body, topic
            assert base64.b64encode(secret.encode()) not in body, topic
    assert not [rec for rec in caplog.records if pin in rec.getMessage()]
    assert not [rec for rec in caplog.records if pairing in rec.getMessage()]
