"""``lockgate ctl``: sign a command, send it to a gateway over MQTT, print the answer.

::

    lockgate ctl --gateway site-1 status
    lockgate ctl --gateway site-1 unlock lock_id=front hold_seconds:=5
    lockgate ctl --gateway site-1 test_credential lock_id=front      # asks for the PIN
    lockgate ctl keygen ~/.config/lockgate/alice.pem --name alice --role operator

``key=value`` passes a string, ``key:=value`` a JSON value (number, true, null). Connection
settings and the operator's key come from ``--config`` (TOML, default
``~/.config/lockgate/ctl.toml`` when it exists) and can be overridden by flags. Secrets are never
taken from the command line: the PIN of ``test_credential`` and the pairing secret of
``commission`` are read from ``--secret-file`` or asked for, and sent sealed to the gateway's
``command_key`` (fetched with ``status`` first), so the broker never sees them; the private key
and the broker password are files that only their owner may read.

Exit status: 0 ``ok``, 1 ``error`` answer, 2 bad usage, 3 no answer (broker or gateway away).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiomqtt import MqttError
from paho.mqtt.packettypes import PacketTypes

from gateway.mqtt.auth import (
    load_private_key,
    new_nonce,
    private_key_pem,
    public_key_b64,
    sign,
)
from gateway.mqtt.connection import BrokerOptions, make_client, payload_bytes, v5_properties
from gateway.mqtt.sealed import public_key_from_b64, seal
from gateway.mqtt.topics import Topics
from gateway.secrets import SecretError, SecretRef, create_secret_file

DEFAULT_CONFIG = Path("~/.config/lockgate/ctl.toml")
SECRET_ARGS = {"test_credential": "secret", "commission": "pairing_secret"}
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NO_ANSWER = 0, 1, 2, 3


class CtlError(Exception):
    """Bad usage or settings; the message is for the operator."""


@dataclass(frozen=True, slots=True)
class CtlSettings:
    gateway_id: str | None = None
    base_topic: str = "lockgate"
    host: str = "localhost"
    port: int = 1883
    transport: str = "tcp"
    unix_socket: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    operator: str | None = None
    private_key: Path | None = None
    timeout_s: float = 10.0
    v311: bool = False
    """Behave like an MQTT 3.1.1 client: no response topic, match the answer by transaction."""

    def broker(self) -> BrokerOptions:
        password = None
        if self.password_file is not None:
            password = SecretRef(file=self.password_file.expanduser()).read_text()
        if self.client_key is not None:
            SecretRef(file=self.client_key.expanduser()).read_bytes()  # must be private
        return BrokerOptions(
            host=self.host,
            port=self.port,
            transport=self.transport,
            unix_socket=self.unix_socket,
            username=self.username,
            password=password,
            tls=self.tls,
            ca_file=self.ca_file,
            client_cert=self.client_cert,
            client_key=self.client_key,
        )


_PATH_FIELDS = {
    "unix_socket",
    "ca_file",
    "client_cert",
    "client_key",
    "password_file",
    "private_key",
}


def load_settings(path: Path | None) -> CtlSettings:
    explicit = path is not None
    path = (path or DEFAULT_CONFIG).expanduser()
    if not path.exists():
        if explicit:
            raise CtlError(f"{path}: no such file")
        return CtlSettings()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CtlError(f"{path}: {err}") from None
    known = set(CtlSettings.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise CtlError(f"{path}: unknown settings {', '.join(unknown)}")
    values: dict[str, Any] = {k: Path(v) if k in _PATH_FIELDS else v for k, v in data.items()}
    return CtlSettings(**values)


def parse_args_list(items: list[str]) -> dict[str, Any]:
    """``key=value`` (a string) and ``key:=value`` (JSON) into the command's ``args``."""
    args: dict[str, Any] = {}
    for item in items:
        if ":=" in item and item.index(":=") < item.index("=") + 1:
            key, raw = item.split(":=", 1)
            try:
                args[key] = json.loads(raw)
            except ValueError:
                raise CtlError(f"{item}: the value after ':=' is not JSON") from None
        elif "=" in item:
            key, value = item.split("=", 1)
            args[key] = value
        else:
            raise CtlError(f"{item}: expected key=value or key:=json")
        if not key:
            raise CtlError(f"{item}: empty key")
    return args


def read_secret(prompt: str, secret_file: Path | None) -> str:
    if secret_file is not None:
        return SecretRef(file=secret_file.expanduser()).read_text()
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


async def send_command(
    settings: CtlSettings,
    command: str,
    args: dict[str, Any],
    *,
    sign_with: tuple[str, Any] | None = None,
    now_ms: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Send one command and return the decoded response; raises TimeoutError or MqttError."""
    if settings.gateway_id is None:
        raise CtlError("no gateway: give --gateway or gateway_id in the config")
    topics = Topics(settings.base_topic, settings.gateway_id)
    request_topic = topics.request(command)
    transaction = uuid.uuid4().hex
    envelope: dict[str, Any] = {"transaction": transaction, "args": args}
    if sign_with is not None:
        operator, key = sign_with
        ts = now_ms if now_ms is not None else int(time.time() * 1000)
        envelope["auth"] = sign(
            key,
            operator,
            command,
            args,
            gateway_id=settings.gateway_id,
            topic=request_topic,
            ts=ts,
            nonce=nonce,
        )
    correlation = os.urandom(16)
    reply_to = (
        topics.response(command)
        if settings.v311
        else f"{topics.response_prefix}ctl-{correlation.hex()}"
    )
    client = make_client(
        settings.broker(), f"lockgate-ctl-{os.urandom(6).hex()}", timeout_s=settings.timeout_s
    )
    async with asyncio.timeout(settings.timeout_s), client:
        await client.subscribe(reply_to, qos=1)
        props = None
        if not settings.v311:
            props = v5_properties(
                PacketTypes.PUBLISH, ResponseTopic=reply_to, CorrelationData=correlation
            )
        body = json.dumps(envelope, separators=(",", ":")).encode()
        await client.publish(request_topic, body, qos=1, properties=props)
        async for message in client.messages:
            try:
                response = json.loads(payload_bytes(message.payload))
            except (TypeError, ValueError):
                continue
            if not isinstance(response, dict):
                continue
            got = getattr(message.properties, "CorrelationData", None)
            if got == correlation or response.get("transaction") == transaction:
                return response
    raise MqttError("disconnected before the answer came")


async def send_sealed(
    settings: CtlSettings,
    command: str,
    args: dict[str, Any],
    secret_name: str,
    secret: str,
    *,
    sign_with: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """Fetch the gateway's ``command_key`` (``status``), seal ``secret`` to it for this very
    request (its nonce), and send the command."""
    status = await send_command(settings, "status", {}, sign_with=sign_with)
    data = status.get("data")
    key_b64 = data.get("command_key") if isinstance(data, dict) else None
    if status.get("status") != "ok":
        return status  # e.g. unauthorised: the operator sees why
    if not isinstance(key_b64, str):
        raise CtlError("the gateway published no command_key; it cannot take sealed secrets")
    gateway_key = public_key_from_b64(key_b64)
    assert settings.gateway_id is not None  # send_command checked
    nonce = new_nonce()
    sealed = seal(
        gateway_key,
        secret,
        gateway_id=settings.gateway_id,
        command=command,
        field=secret_name,
        nonce=nonce,
    )
    return await send_command(
        settings, command, {**args, secret_name: sealed}, sign_with=sign_with, nonce=nonce
    )


# --- the command line ----------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ctl",
        help="send a (signed) command to a gateway over MQTT",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help=f"ctl settings (default {DEFAULT_CONFIG})")
    p.add_argument("--gateway", help="the gateway id")
    p.add_argument("--base-topic")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--tls", action="store_true", default=None)
    p.add_argument("--ca-file", type=Path)
    p.add_argument("--cert", type=Path, help="client certificate (PEM)")
    p.add_argument("--key", type=Path, help="client certificate's key (PEM, mode 600)")
    p.add_argument("--username")
    p.add_argument("--password-file", type=Path)
    p.add_argument("--operator", help="operator name, as in the gateway's operator keys")
    p.add_argument("--private-key", type=Path, help="operator's Ed25519 key (PEM, mode 600)")
    p.add_argument("--unsigned", action="store_true", help="do not sign even with a key")
    p.add_argument("--secret-file", type=Path, help="PIN / pairing secret (mode 600)")
    p.add_argument("--timeout", type=float)
    p.add_argument("--v311", action="store_true", default=None, help="no v5 response topic")
    p.add_argument("--name", help="keygen: the operator name for the snippet")
    p.add_argument("--role", default="operator", choices=["viewer", "operator", "admin"])
    p.add_argument("command", help="a command (status, unlock, ...) or keygen")
    p.add_argument("args", nargs="*", help="key=value (string) or key:=json")
    p.set_defaults(func=cmd_ctl)


def _settings_from(ns: argparse.Namespace) -> CtlSettings:
    s = load_settings(ns.config)
    overrides = {
        "gateway_id": ns.gateway,
        "base_topic": ns.base_topic,
        "host": ns.host,
        "port": ns.port,
        "tls": ns.tls,
        "ca_file": ns.ca_file,
        "client_cert": ns.cert,
        "client_key": ns.key,
        "username": ns.username,
        "password_file": ns.password_file,
        "operator": ns.operator,
        "private_key": ns.private_key,
        "timeout_s": ns.timeout,
        "v311": ns.v311,
    }
    return replace(s, **{k: v for k, v in overrides.items() if v is not None})


def _keygen(ns: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(ns.args) != 1:
        raise CtlError("usage: lockgate ctl keygen PRIVATE_KEY_FILE --name NAME [--role ROLE]")
    path = Path(ns.args[0]).expanduser()
    key = Ed25519PrivateKey.generate()
    try:
        create_secret_file(path, private_key_pem(key))
    except FileExistsError:
        raise CtlError(f"{path} exists; not overwriting a key") from None
    name = ns.name or "operator"
    print(f"# private key written to {path} (mode 600); add this to the gateway's operator keys:")
    print("[[operator]]")
    print(f'name = "{name}"')
    print(f'public_key = "{public_key_b64(key.public_key())}"')
    print(f'role = "{ns.role}"')
    return EXIT_OK


def _prepare(
    ns: argparse.Namespace,
) -> tuple[CtlSettings, dict[str, Any], Any, str | None]:
    settings = _settings_from(ns)
    args = parse_args_list(ns.args)
    secret_name = SECRET_ARGS.get(ns.command)
    secret = None
    if secret_name is not None:
        if secret_name in args:
            raise CtlError(f"{secret_name} is never taken from the command line")
        secret = read_secret(f"{secret_name}: ", ns.secret_file)
    sign_with = None
    if settings.private_key is not None and not ns.unsigned:
        if settings.operator is None:
            raise CtlError("a private key needs --operator (the name the gateway knows)")
        key = load_private_key(SecretRef(file=settings.private_key.expanduser()).read_bytes())
        sign_with = (settings.operator, key)
    return settings, args, sign_with, secret


def cmd_ctl(ns: argparse.Namespace) -> int:
    try:
        if ns.command == "keygen":
            return _keygen(ns)
        settings, args, sign_with, secret = _prepare(ns)
        secret_name = SECRET_ARGS.get(ns.command)
        if secret_name is not None and secret is not None:
            response = asyncio.run(
                send_sealed(settings, ns.command, args, secret_name, secret, sign_with=sign_with)
            )
        else:
            response = asyncio.run(send_command(settings, ns.command, args, sign_with=sign_with))
    except (CtlError, SecretError, ValueError, TypeError) as err:
        print(f"lockgate ctl: {err}", file=sys.stderr)
        return EXIT_USAGE
    except TimeoutError:
        print("lockgate ctl: no answer in time (is the gateway online?)", file=sys.stderr)
        return EXIT_NO_ANSWER
    except MqttError as err:
        print(f"lockgate ctl: broker: {err}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(response, indent=2, sort_keys=True))
    return EXIT_OK if response.get("status") == "ok" else EXIT_ERROR
