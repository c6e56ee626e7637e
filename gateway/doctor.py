"""``lockgate doctor``: is this gateway ready to serve? One line a check, a verdict each.

It checks, against the real services the config names: the config itself, that the cloud
accepts the API key, that every lock's scope (spaces, entrances, devices) names objects the
workspace has, that the broker accepts the gateway's login, and that the clock is trusted
(the kernel's NTP state and the cloud's ``Date``). It changes nothing, and never prints a
secret. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway.cloud.client import CloudClient
from gateway.cloud.errors import CloudAuthError, CloudError
from gateway.cloud_ls import KINDS, client_for, fetch
from gateway.config import GatewayConfig
from gateway.secrets import SecretError
from gateway.timetrust import kernel_clock_synchronised


@dataclass(frozen=True, slots=True)
class Verdict:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.check}: {self.detail}"


async def check_cloud(cfg: GatewayConfig, client: CloudClient) -> Verdict:
    try:
        await client.call("/spaces/list", {"limit": 1})
    except CloudAuthError:
        return Verdict(
            "cloud",
            False,
            f"{cfg.cloud.endpoint} refused the API key: put a valid key in the file or "
            "credential named by cloud.api_key",
        )
    except (CloudError, OSError) as err:
        return Verdict("cloud", False, f"{cfg.cloud.endpoint} unreachable: {err}")
    return Verdict("cloud", True, f"{cfg.cloud.endpoint} accepts the API key")


async def check_scope(cfg: GatewayConfig, client: CloudClient) -> list[Verdict]:
    known: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        known[kind.config_key] = dict(await fetch(client, kind))
    out: list[Verdict] = []
    for lock in cfg.locks:
        named: list[str] = []
        missing: list[str] = []
        for kind in KINDS:
            for obj_id in getattr(lock, kind.config_key):
                name = known[kind.config_key].get(obj_id)
                if name is None:
                    missing.append(f"{kind.config_key} {obj_id}")
                else:
                    named.append(f"'{name}'" if name else obj_id)
        if missing:
            detail = "not in the workspace: " + ", ".join(missing) + " (see 'lockgate cloud ls')"
            out.append(Verdict(f"scope {lock.id}", False, detail))
        elif not named:
            out.append(
                Verdict(
                    f"scope {lock.id}",
                    False,
                    "serves nothing: give it space_ids, "
                    "acs_entrance_ids or device_ids (see 'lockgate cloud ls')",
                )
            )
        else:
            out.append(Verdict(f"scope {lock.id}", True, "serves " + ", ".join(named)))
    return out


def check_clock(cfg: GatewayConfig, client: CloudClient | None) -> Verdict:
    kernel = kernel_clock_synchronised()
    server = client.last_server_time if client is not None else None
    parts = [
        {
            True: "kernel: synchronised",
            False: "kernel: NOT synchronised (is NTP running?)",
            None: "kernel: cannot tell",
        }[kernel]
    ]
    agrees: bool | None = None
    if server is not None:
        skew = abs((datetime.now(UTC) - server).total_seconds())
        agrees = skew <= cfg.time.max_cloud_skew_s
        parts.append(
            f"cloud Date {'agrees' if agrees else 'DISAGREES'} ({skew:.0f} s apart, "
            f"limit {cfg.time.max_cloud_skew_s:.0f} s)"
        )
    ok = agrees is not False and (kernel is True or agrees is True)
    return Verdict("clock", ok, "; ".join(parts))


async def check_broker(cfg: GatewayConfig, timeout_s: float = 10.0) -> Verdict:
    if not cfg.mqtt.enabled:
        return Verdict("broker", True, "MQTT is off in the config (no management plane)")
    import aiomqtt

    from gateway.mqtt.connection import BrokerOptions, is_auth_refusal, make_client

    try:
        opts = BrokerOptions.from_config(cfg.mqtt)
    except (SecretError, OSError) as err:
        return Verdict("broker", False, f"cannot read the MQTT credentials: {err}")
    where = str(opts.unix_socket) if opts.transport == "unix" else f"{opts.host}:{opts.port}"
    # Its own client id: the gateway's would take over the running daemon's session.
    client = make_client(opts, f"lockgate-doctor-{secrets.token_hex(4)}", timeout_s=timeout_s)
    try:
        async with asyncio.timeout(timeout_s), client:
            pass
    except aiomqtt.MqttError as err:
        if is_auth_refusal(err):
            return Verdict(
                "broker",
                False,
                f"{where} refused the login of user "
                f"{opts.username!r}: check mqtt.username and mqtt.password",
            )
        return Verdict("broker", False, f"{where} unreachable or refusing: {err}")
    except (TimeoutError, OSError) as err:
        return Verdict("broker", False, f"{where} unreachable: {err or 'timed out'}")
    who = f"user {opts.username!r}" if opts.username else "an anonymous login"
    return Verdict("broker", True, f"{where} accepts {who}")


async def diagnose(cfg: GatewayConfig) -> list[Verdict]:
    verdicts: list[Verdict] = []
    try:
        client = client_for(cfg)
    except (SecretError, OSError) as err:
        verdicts += [
            Verdict("cloud", False, f"cannot read the API key: {err}"),
            check_clock(cfg, None),
        ]
    else:
        async with client:
            cloud = await check_cloud(cfg, client)
            verdicts.append(cloud)
            if cloud.ok:
                try:
                    verdicts += await check_scope(cfg, client)
                except (CloudError, OSError) as err:
                    verdicts.append(Verdict("scope", False, f"cannot list the workspace: {err}"))
            verdicts.append(check_clock(cfg, client if cloud.ok else None))
    verdicts.append(await check_broker(cfg))
    return verdicts


def report(verdicts: Sequence[Verdict], out: TextIO) -> int:
    for v in verdicts:
        print(v.line(), file=out)
    failed = sum(1 for v in verdicts if not v.ok)
    print(f"{len(verdicts) - failed} of {len(verdicts)} checks passed", file=out)
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gateway.cli import load_or_report

    cfg = load_or_report(args.config)
    if cfg is None:
        print("FAIL  config: fix the file first ('lockgate check-config -c FILE')", file=sys.stdout)
        return 1
    print(f"ok    config: {args.config} (gateway {cfg.gateway_id}, {len(cfg.locks)} locks)")
    return report(asyncio.run(diagnose(cfg)), sys.stdout)


def add_parser(sub: Any, config_argument: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the cloud, the locks' scope, the broker and the clock, one line each",
        description=(
            "Check, against the real services, that this gateway is ready: the cloud accepts "
            "the API key, each lock's scope exists in the workspace, the broker accepts the "
            "gateway's login, and the clock is trusted. Changes nothing. Exit 0 when all pass."
        ),
    )
    config_argument(p)
    p.set_defaults(func=cmd_doctor)
