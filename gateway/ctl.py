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

Every answer must be signed by the gateway's identity (:mod:`gateway.mqtt.identity`), pinned
with ``gateway_key`` in the settings (``--gateway-key``) or else trusted on first use and kept
in ``known_gateways`` (``~/.config/lockgate/known_gateways.toml``); an answer signed by any
other key is ignored, and a gateway whose identity changed is refused. A secret is sealed only
to a command key the pinned identity vouches for.

Exit status: 0 ``ok``, 1 ``error`` answer, 2 bad usage, 3 no answer (broker or gateway away),
4 an answer not signed by the gateway's pinned identity (someone else answered).
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
from gateway.mqtt.identity import (
    IdentityError,
    fingerprint,
    verify_command_key,
    verify_response,
)
from gateway.mqtt.sealed import public_key_from_b64, seal
from gateway.mqtt.topics import Topics
from gateway.secrets import SecretError, SecretRef, create_secret_file

DEFAULT_CONFIG = Path("~/.config/lockgate/ctl.toml")
DEFAULT_KNOWN_GATEWAYS = Path("~/.config/lockgate/known_gateways.toml")
SECRET_ARGS = {"test_credential": "secret", "commission": "pairing_secret"}
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NO_ANSWER, EXIT_NOT_THE_GATEWAY = 0, 1, 2, 3, 4



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
    commission_timeout_s: float = 130.0
    """How long ``commission`` waits for its answer (at least ``timeout_s``): pairing takes the
    gateway up to its own ``commission_timeout_s`` (120 s by default; a BLE lock is scanned for
    first), and giving up earlier would leave the operator guessing."""
    v311: bool = False
    """Behave like an MQTT 3.1.1 client: no response topic, match the answer by transaction."""
    gateway_key: str | None = None
    """The gateway's identity (base64 Ed25519 public key), pinned at enrolment."""
    known_gateways: Path = DEFAULT_KNOWN_GATEWAYS
    """Identities trusted on first use, one ``"<gateway_id>" = "<identity>"`` line each."""

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
    "known_gateways",
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
    values: dict[str, Any] = {
        k: Path(v).expanduser() if k in _PATH_FIELDS else v for k, v in data.items()
    }
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
    identity: str | None = None,
    learn_identity: bool = False,
) -> dict[str, Any]:
    """Send one command and return the decoded response; raises TimeoutError or MqttError.

    With ``identity`` (the gateway's, base64), only an answer signed by it for this very
    request counts; others are skipped, and :class:`IdentityError` is raised when only such
    answers came. ``learn_identity`` (trust on first use, ``status`` only): the answer must be
    signed by the identity it states."""
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
    body = json.dumps(envelope, separators=(",", ":")).encode()
    forged: list[IdentityError] = []
    try:
        wait = settings.timeout_s
        if command == "commission":
            wait = max(wait, settings.commission_timeout_s)
        async with asyncio.timeout(wait), client:
            await client.subscribe(reply_to, qos=1)
            props = None
            if not settings.v311:
                props = v5_properties(
                    PacketTypes.PUBLISH, ResponseTopic=reply_to, CorrelationData=correlation
                )
            await client.publish(request_topic, body, qos=1, properties=props)
            async for message in client.messages:
                try:
                    response = json.loads(payload_bytes(message.payload))
                except (TypeError, ValueError):
                    continue
                if not isinstance(response, dict):
                    continue
                got = getattr(message.properties, "CorrelationData", None)
                if got != correlation and response.get("transaction") != transaction:
                    continue
                expected = identity
                if learn_identity:
                    data = response.get("data")
                    stated = data.get("identity") if isinstance(data, dict) else None
                    expected = stated if isinstance(stated, str) else ""
                if expected is None:
                    return response
                try:
                    verify_response(expected, settings.gateway_id, command, body, response)
                except IdentityError as err:
                    # Someone else answered; the gateway's own answer may still come.
                    forged.append(_explain(err, expected, response))
                    continue
                return response
    except TimeoutError:
        if forged:
            raise forged[0] from None
        raise
    raise MqttError("disconnected before the answer came")


async def send_sealed(
    settings: CtlSettings,
    command: str,
    args: dict[str, Any],
    secret_name: str,
    secret: str,
    *,
    identity: str,
    sign_with: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """Fetch the gateway's ``command_key`` (``status``, answered under ``identity``), check
    that the identity vouches for it, seal ``secret`` to it for this very request (its
    nonce), and send the command."""
    status = await send_command(settings, "status", {}, sign_with=sign_with, identity=identity)
    data = status.get("data")
    if status.get("status") != "ok":
        return status  # e.g. unauthorised: the operator sees why
    key_b64 = data.get("command_key") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(key_b64, str):
        raise CtlError("the gateway published no command_key; it cannot take sealed secrets")
    assert settings.gateway_id is not None  # send_command checked
    verify_command_key(identity, settings.gateway_id, key_b64, data.get("command_key_sig"))
    gateway_key = public_key_from_b64(key_b64)
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
        settings,
        command,
        {**args, secret_name: sealed},
        sign_with=sign_with,
        nonce=nonce,
        identity=identity,
    )


# --- the gateway's identity: pinned, or trusted on first use -------------------------------
def _explain(err: IdentityError, expected: str, response: dict[str, Any]) -> IdentityError:
    data = response.get("data")
    stated = data.get("identity") if isinstance(data, dict) else None
    if isinstance(stated, str) and expected and stated != expected:
        try:
            theirs = fingerprint(stated)
        except ValueError:
            theirs = "(not a key)"
        return IdentityError(
            f"the gateway's identity changed: an answer came signed as {theirs}, not the "
            f"pinned {fingerprint(expected)}; refusing it (if the gateway was really "
            "reinstalled, check 'lockgate identity' there and pin the new one)"
        )
    return IdentityError(f"{err}; refusing it (someone else answered in the gateway's place)")


def read_known(path: Path) -> dict[str, str]:
    path = path.expanduser()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CtlError(f"{path}: {err}") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def remember(path: Path, gateway_id: str, identity: str) -> None:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{json.dumps(gateway_id)} = {json.dumps(identity)}\n")


def pinned_identity(settings: CtlSettings) -> str | None:
    """The identity this operator pinned for the gateway (settings first, then known)."""
    assert settings.gateway_id is not None
    known = read_known(settings.known_gateways).get(settings.gateway_id)
    if settings.gateway_key is not None:
        if known is not None and known != settings.gateway_key:
            raise IdentityError(
                f"gateway {settings.gateway_id}: gateway_key differs from the identity in "
                f"{settings.known_gateways}; remove the stale line there"
            )
        return settings.gateway_key
    return known


async def trusted_identity(
    settings: CtlSettings, sign_with: tuple[str, Any] | None
) -> tuple[str, dict[str, Any] | None]:
    """The gateway's identity to verify answers with, and the ``status`` answer when it had to
    be learnt now (trust on first use: remembered in ``known_gateways``, announced on stderr)."""
    if settings.gateway_id is None:
        raise CtlError("no gateway: give --gateway or gateway_id in the config")
    pinned = pinned_identity(settings)
    if pinned is not None:
        return pinned, None
    status = await send_command(settings, "status", {}, sign_with=sign_with, learn_identity=True)
    data = status.get("data")
    identity = data.get("identity") if isinstance(data, dict) else None
    if status.get("status") != "ok" or not isinstance(identity, str):
        return "", status  # e.g. unauthorised (signed all the same): nothing to learn
    remember(settings.known_gateways, settings.gateway_id, identity)
    print(
        f"lockgate ctl: gateway {settings.gateway_id} identity {fingerprint(identity)} "
        f"trusted on first use (in {settings.known_gateways}); compare it with "
        "'lockgate identity' on the gateway",
        file=sys.stderr,
    )
    return identity, status


# --- the command line ----------------------------------------------------------------------
def add_parser(sub: Any) -> None:
    from gateway.helptext import plain

    p = sub.add_parser(
        "ctl",
        help="send a (signed) command to a gateway over MQTT",
        description=plain(__doc__),
        epilog=commands_text(),
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
    p.add_argument("--gateway-key", help="the gateway's identity (base64), as pinned at enrolment")
    p.add_argument("--known-gateways", type=Path, help="identities trusted on first use")
    p.add_argument("--timeout", type=float)
    p.add_argument("--v311", action="store_true", default=None, help="no v5 response topic")
    p.add_argument("--name", help="keygen: the operator name for the snippet")
    p.add_argument("--role", default="operator", choices=["viewer", "operator", "admin"])
    p.add_argument(
        "command", help="a command (see the list below; 'lockgate ctl commands'), or keygen"
    )
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
        "gateway_key": ns.gateway_key,
        "known_gateways": ns.known_gateways,
    }
    return replace(s, **{k: v for k, v in overrides.items() if v is not None})


def commands_text() -> str:
    """Every command the gateway answers, with the role it needs, for ``--help``."""
    from gateway.mqtt.commands import COMMANDS

    lines = ["commands (role a signature must carry; '-': unsigned reads are allowed):"]
    for c in COMMANDS.values():
        role = c.role.name.lower() if c.role is not None else "-"
        lines.append(f"  {c.name:<17} {role:<9} {c.summary}")
    lines.append(
        "  keygen            (local)   make an operator key and print its [[operator]] entry"
    )
    return "\n".join(lines)


NEEDS_SIGNATURE = """\
this command needs an operator's signature. Make a key once:
  lockgate ctl keygen ~/.config/lockgate/me.pem --name me --role operator
have the gateway's admin add the printed [[operator]] entry to its operator keys, then run
again with --operator me --private-key ~/.config/lockgate/me.pem (or put both in ctl.toml)."""


def _keygen(ns: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(ns.args) != 1:
        raise CtlError("usage: lockgate ctl keygen PRIVATE_KEY_FILE --name NAME [--role ROLE]")
    path = Path(ns.args[0]).expanduser()
    name = ns.name or "operator"
    if path.exists():  # print the entry of the key we have again; never overwrite a key
        key = load_private_key(SecretRef(file=path).read_bytes())
        print(f"# {path} exists: the [[operator]] entry for its key (the key is unchanged):")
    else:
        key = Ed25519PrivateKey.generate()
        create_secret_file(path, private_key_pem(key))
        print(
            f"# private key written to {path} (mode 600); add this to the gateway's operator keys:"
        )
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


async def run_command(
    settings: CtlSettings,
    command: str,
    args: dict[str, Any],
    sign_with: tuple[str, Any] | None,
    secret: str | None,
) -> dict[str, Any]:
    """What ``lockgate ctl COMMAND`` does: every answer checked against the gateway's
    identity (pinned, or learnt now on first use)."""
    identity, status = await trusted_identity(settings, sign_with)
    if status is not None and (not identity or command == "status"):
        return status
    secret_name = SECRET_ARGS.get(command)
    if secret_name is not None and secret is not None:
        return await send_sealed(
            settings, command, args, secret_name, secret, identity=identity, sign_with=sign_with
        )
    return await send_command(settings, command, args, sign_with=sign_with, identity=identity)


UNSIGNED_CODES = frozenset({"unauthorised"})
"""Error codes that, for a request sent without a key, mean "sign it"."""


def cmd_ctl(ns: argparse.Namespace) -> int:
    try:
        if ns.command == "keygen":
            return _keygen(ns)
        if ns.command in {"commands", "help"}:
            print(commands_text())
            return EXIT_OK
        settings, args, sign_with, secret = _prepare(ns)
        response = asyncio.run(run_command(settings, ns.command, args, sign_with, secret))
    except IdentityError as err:
        print(f"lockgate ctl: {err}", file=sys.stderr)
        return EXIT_NOT_THE_GATEWAY
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
    error = response.get("error") if isinstance(response.get("error"), dict) else None
    if error is not None and sign_with is None and error.get("code") in UNSIGNED_CODES:
        print(f"lockgate ctl: {NEEDS_SIGNATURE}", file=sys.stderr)
    return EXIT_OK if response.get("status") == "ok" else EXIT_ERROR
