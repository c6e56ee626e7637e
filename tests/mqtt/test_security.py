"""The broker side of security: TLS with server verification and client certificates, a
password file made by mosquitto_passwd, and the ACL from docs/mqtt.md, on a real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from lockgate_sim.broker import BrokerTls, Mosquitto, make_password_file

from drivers.base import BoltState
from gateway.mqtt.connection import BrokerOptions, ReconnectPolicy, is_auth_refusal, make_client
from gateway.mqtt.topics import mosquitto_acl
from gateway.secrets import SecretError
from tests.mqtt.certs import Pki, make_pki
from tests.mqtt.harness import Operators, Requester, Watcher, running_site

PASSWORDS = {
    "gw-test": "gw-secret",
    "gw-other": "other-secret",
    "operator": "op-secret",
    "homeassistant": "ha-secret",
}


@dataclass
class SecureBroker:
    broker: Mosquitto
    pki: Pki

    def opts(
        self, user: str | None, password: str | None = None, ca_file: Path | None = None
    ) -> BrokerOptions:
        return BrokerOptions(
            host="localhost",
            port=self.broker.port,
            username=user,
            password=password if password is not None else PASSWORDS.get(user or ""),
            tls=True,
            ca_file=ca_file or self.pki.ca_file,
            client_cert=self.pki.client_cert,
            client_key=self.pki.client_key,
        )


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[SecureBroker]:
    pki = make_pki(tmp_path / "pki")
    passwd = make_password_file(tmp_path / "passwd", PASSWORDS)
    acl = tmp_path / "acl"
    acl.write_text(mosquitto_acl())
    tls = BrokerTls(pki.ca_file, pki.server_cert, pki.server_key, require_certificate=True)
    async with Mosquitto(tmp_path / "broker", tls=tls, password_file=passwd, acl_file=acl) as b:
        yield SecureBroker(b, pki)


def secret_file(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


async def test_tls_password_and_acl_end_to_end(
    tmp_path: Path, secure: SecureBroker, operators: Operators
) -> None:
    mqtt = {
        "host": "localhost",
        "tls": True,
        "ca_file": str(secure.pki.ca_file),
        "client_cert": str(secure.pki.client_cert),
        "client_key": {"file": str(secure.pki.client_key)},
        "username": "gw-test",
        "password": {"file": secret_file(tmp_path / "gw.pass", "gw-secret")},
        "homeassistant_discovery": True,
    }
    async with running_site(tmp_path / "gw", secure.broker, operators, mqtt=mqtt) as site:
        t = site.topics
        async with Requester(secure.opts("operator"), t) as r:
            resp = await r.request("unlock", {"lock_id": "front"}, sign_as=operators.signer("olga"))
            assert resp["status"] == "ok", resp
            assert site.bolt() is BoltState.UNLOCKED
        # Home Assistant may read the state and discovery, and write its command topic.
        async with Watcher(
            secure.opts("homeassistant"), t.lock_state("front"), "homeassistant/#"
        ) as ha:
            await ha.until(lambda: t.lock_state("front") in ha.latest and len(ha.latest) >= 5)
            await ha.publish(t.ha_set("front"), b"LOCK")
            await ha.until(lambda: ha.json(t.lock_state("front"))["bolt"] == "locked")

        # Another gateway's credentials reach nothing of this one. Mosquitto grants the
        # subscription and filters each message; a marker on a topic the intruder may read,
        # published after the gateway's traffic, shows what it would have had by then.
        marker = "lockgate/gw-other/request/status"
        async with Watcher(secure.opts("gw-other"), f"{t.root}/#", marker) as intruder:
            async with make_client(secure.opts("gw-other"), "intruder-writes") as other:
                await other.publish(t.state, b'{"forged": true}', qos=1, retain=True)
                await other.publish(t.request("unlock"), b'{"args": {"lock_id": "front"}}', qos=1)
            async with Requester(secure.opts("operator"), t) as r:
                assert (await r.request("status"))["status"] == "ok"
                await r.publish(marker, b"{}")
            await intruder.until(lambda: marker in intruder.latest)
            assert [topic for topic in intruder.latest if topic.startswith(t.root)] == []
        async with Watcher(secure.opts("operator"), t.state) as w:
            await w.until(lambda: t.state in w.latest)
            assert "forged" not in w.json(t.state)
        assert site.bolt() is BoltState.LOCKED


async def test_server_verification_refuses_a_broker_the_ca_did_not_sign(
    tmp_path: Path, secure: SecureBroker
) -> None:
    other_ca = make_pki(tmp_path / "other-pki")
    opts = secure.opts("operator", ca_file=other_ca.ca_file)
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with make_client(opts, "wrong-ca"):
            pass


async def test_a_refused_login_backs_off_to_the_maximum(secure: SecureBroker) -> None:
    policy = ReconnectPolicy(0.5, 60.0)
    with pytest.raises(aiomqtt.MqttError) as info:
        async with make_client(secure.opts("gw-test", password="wrong"), "bad-login"):
            pass
    assert is_auth_refusal(info.value)
    assert policy.next_delay(info.value) == 60.0
    assert policy.next_delay(ConnectionRefusedError()) <= 2.0


async def test_anonymous_is_refused(secure: SecureBroker) -> None:
    with pytest.raises(aiomqtt.MqttError) as info:
        async with make_client(secure.opts(None), "anonymous"):
            pass
    assert is_auth_refusal(info.value)


def test_acl_text_is_what_the_docs_show() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
    acl = mosquitto_acl()
    assert acl.strip() in docs.read_text(), "docs/mqtt.md must show the ACL the tests use"
    assert json.dumps(acl)  # plain text


async def test_gateway_refuses_to_start_with_a_readable_password_file(
    tmp_path: Path, operators: Operators
) -> None:
    loose = tmp_path / "gw.pass"
    loose.write_text("gw-secret")
    loose.chmod(0o644)
    broker = Mosquitto(tmp_path / "broker")  # never started: the gateway fails before
    with pytest.raises(ExceptionGroup) as info:
        async with running_site(
            tmp_path / "gw", broker, operators, mqtt={"password": {"file": str(loose)}}
        ):
            pass
    assert info.group_contains(SecretError, match="readable by group or others", depth=None)
