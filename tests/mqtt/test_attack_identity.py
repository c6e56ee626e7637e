"""Attacker's side of issue 10, finding 1: the broker answers in the gateway's place.

``lockgate ctl`` used to read the gateway's ``command_key`` from a plain, unsigned ``status``
answer and seal the PIN (or a lock's pairing secret) to it. The broker — which sealing exists
to protect against — could answer ``status`` itself with a key of its own, open the secret,
and commission the still-unpaired lock to its own gateway.

Here the broker's part is played by a client that takes the gateway's requests and answers
them, fully self-consistent, with an identity and a command key of its own. The operator runs
the real ``lockgate ctl`` in a separate process, having pinned the real gateway's identity at
enrolment (in ``known_gateways`` under its ``$HOME``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from lockgate_sim.broker import Mosquitto
from paho.mqtt.packettypes import PacketTypes

from gateway.mqtt.auth import private_key_pem
from gateway.mqtt.connection import make_client, payload_bytes, v5_properties
from gateway.mqtt.identity import (
    GatewayIdentity,
    IdentityError,
    verify_command_key,
    verify_document,
)
from gateway.mqtt.sealed import Opener, SealError
from gateway.mqtt.topics import Topics
from tests.mqtt.harness import (
    GATEWAY_ID,
    WAIT,
    Operators,
    Site,
    Watcher,
    broker_options,
    running,
)

REPO = Path(__file__).resolve().parents[2]
PIN = "482916"
PAIRING = "pairing-secret-on-the-box"


async def lockgate(home: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {**os.environ, "HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Impostor:
    """Answers the gateway's requests with its own identity and command key, and keeps
    whatever secret it manages to open."""

    def __init__(self, broker: Mosquitto, topics: Topics) -> None:
        self.broker = broker
        self.topics = topics
        self.identity = GatewayIdentity(Ed25519PrivateKey.generate(), topics.gateway_id)
        command_key = X25519PrivateKey.generate()
        self.opener = Opener(command_key, topics.gateway_id)
        self.stolen: list[str] = []
        self.sealed_seen = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        client = make_client(broker_options(self.broker), "impostor")
        async with client:
            await client.subscribe(self.topics.request_filter, qos=1)
            self.ready.set()
            async for message in client.messages:
                command = self.topics.command_of(message.topic.value)
                if command is None:
                    continue
                request = payload_bytes(message.payload)
                envelope = json.loads(request)
                data = self.answer(command, envelope)
                response = self.identity.sign_response(
                    command,
                    request,
                    {
                        "status": "ok",
                        "data": data,
                        "error": None,
                        "transaction": envelope.get("transaction"),
                    },
                )
                reply_to = getattr(message.properties, "ResponseTopic", None)
                corr = getattr(message.properties, "CorrelationData", None)
                props = v5_properties(PacketTypes.PUBLISH, CorrelationData=corr) if corr else None
                await client.publish(
                    reply_to or self.topics.response(command),
                    json.dumps(response).encode(),
                    qos=1,
                    properties=props,
                )

    def answer(self, command: str, envelope: dict[str, Any]) -> Any:
        if command == "status":
            return {
                "gateway_id": self.topics.gateway_id,
                "identity": self.identity.public_b64,
                "command_key": self.opener.public_b64,
                "command_key_sig": self.identity.bind_command_key(self.opener.public_b64),
            }
        for field, value in envelope.get("args", {}).items():
            if isinstance(value, dict) and "sealed" in value:
                self.sealed_seen += 1
                try:
                    blob = base64.b64decode(value["sealed"])
                    nonce = envelope["auth"]["nonce"]
                    self.stolen.append(
                        self.opener.open(blob, command=command, field=field, nonce=nonce)
                    )
                except (SealError, KeyError):
                    pass
        return {"lock_id": "front", "dry_run": True, "allow": False, "commissioned": True}


@pytest.fixture
async def impostor(broker: Mosquitto) -> AsyncIterator[Impostor]:
    imp = Impostor(broker, Topics("lockgate", GATEWAY_ID))
    async with running(imp.run(), "impostor"):
        async with asyncio.timeout(WAIT):
            await imp.ready.wait()
        yield imp


def operator_home(tmp_path: Path, broker: Mosquitto, operators: Operators, pinned: str) -> Path:
    """An operator enrolled with the real gateway: its identity pinned, olga's key, a config."""
    home = tmp_path / "home"
    conf = home / ".config" / "lockgate"
    conf.mkdir(parents=True)
    key = conf / "olga.pem"
    key.write_bytes(private_key_pem(operators.keys["olga"]))
    key.chmod(0o600)
    (conf / "ctl.toml").write_text(
        f'gateway_id = "{GATEWAY_ID}"\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'operator = "olga"\nprivate_key = "{key}"\ntimeout_s = 3.0\n'
    )
    (conf / "known_gateways.toml").write_text(f'"{GATEWAY_ID}" = "{pinned}"\n')
    return home


@pytest.mark.parametrize(("command", "secret"), [("test_credential", PIN), ("commission", PAIRING)])
async def test_attack_broker_answering_status_with_its_own_key_gets_no_secret(
    tmp_path: Path,
    broker: Mosquitto,
    operators: Operators,
    impostor: Impostor,
    command: str,
    secret: str,
) -> None:
    real_identity = GatewayIdentity(Ed25519PrivateKey.generate(), GATEWAY_ID)
    home = operator_home(tmp_path, broker, operators, real_identity.public_b64)
    code, out, err = await lockgate(
        home, "ctl", command, "lock_id=front", stdin=f"{secret}\n".encode()
    )
    assert impostor.stolen == [], "the broker opened the sealed secret"
    assert impostor.sealed_seen == 0, "a secret was sealed to a key the gateway never vouched for"
    assert code == 4, (code, out, err)
    assert "identity changed" in err
    assert secret not in out + err


async def test_attack_forged_answers_are_refused_even_for_plain_commands(
    tmp_path: Path, broker: Mosquitto, operators: Operators, impostor: Impostor
) -> None:
    """A forged ``unlock`` answer ("ok, unlocked") must not reach the operator as the truth."""
    real_identity = GatewayIdentity(Ed25519PrivateKey.generate(), GATEWAY_ID)
    home = operator_home(tmp_path, broker, operators, real_identity.public_b64)
    code, out, err = await lockgate(home, "ctl", "unlock", "lock_id=front")
    assert code == 4 and out == "", (code, out, err)


async def test_the_real_gateway_is_pinned_on_first_use_and_its_answers_verify(
    tmp_path: Path, site: Site, operators: Operators
) -> None:
    home = tmp_path / "home"
    conf = home / ".config" / "lockgate"
    conf.mkdir(parents=True)
    key = conf / "olga.pem"
    key.write_bytes(private_key_pem(operators.keys["olga"]))
    key.chmod(0o600)
    (conf / "ctl.toml").write_text(
        f'gateway_id = "{GATEWAY_ID}"\nhost = "{site.broker.host}"\nport = {site.broker.port}\n'
        f'operator = "olga"\nprivate_key = "{key}"\ntimeout_s = 5.0\n'
    )
    code, out, err = await lockgate(home, "ctl", "status")
    assert code == 0, err
    assert "trusted on first use" in err
    identity = site.plane.identity.public_b64
    assert json.loads(out)["data"]["identity"] == identity
    known = (conf / "known_gateways.toml").read_text()
    assert identity in known
    code, out, err = await lockgate(
        home, "ctl", "test_credential", "lock_id=front", stdin=b"1234\n"
    )
    assert code == 0, err
    assert "trusted on first use" not in err
    assert "1234" not in out


async def test_retained_state_is_signed_and_the_command_key_bound(site: Site) -> None:
    identity = site.plane.identity.public_b64
    async with Watcher(broker_options(site.broker), site.topics.state) as w:
        await w.until(lambda: site.topics.state in w.latest)
        doc = w.json(site.topics.state)
    verify_document(identity, GATEWAY_ID, site.topics.state, doc)
    verify_command_key(identity, GATEWAY_ID, doc["command_key"], doc["command_key_sig"])
    with pytest.raises(IdentityError):
        verify_document(identity, GATEWAY_ID, site.topics.state, {**doc, "command_key": "x"})
    with pytest.raises(IdentityError):  # the same document is worthless on another topic
        verify_document(identity, GATEWAY_ID, site.topics.lock_state("front"), doc)


async def test_lockgate_identity_prints_the_running_gateways_key_to_pin(
    tmp_path: Path, site: Site
) -> None:
    store = site.gw.config.store
    config = tmp_path / "lockgate.toml"
    config.write_text(
        f'gateway_id = "{GATEWAY_ID}"\n'
        '[cloud]\nendpoint = "https://connect.example.com"\n'
        f'api_key = {{ file = "{tmp_path / "gw" / "cloud.key"}" }}\n'
        f'[store]\npath = "{store.path}"\nkey = {{ file = "{store.key.file}" }}\n'
        '[[locks]]\nid = "front"\nspace_ids = ["space-a"]\n[locks.driver]\ntype = "sim"\n'
    )
    code, out, err = await lockgate(tmp_path, "identity", "-c", str(config))
    assert code == 0, err
    assert f'gateway_key = "{site.plane.identity.public_b64}"' in out
    assert site.plane.identity.fingerprint in out
