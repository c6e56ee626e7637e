"""``lockgate identity``: print the gateway's MQTT identity for operators to pin.

The identity key is made at the gateway's first start (and at the first ``lockgate identity``
on a new store); this prints the public half as the ``gateway_key`` line of an operator's
``ctl.toml``, with its fingerprint for comparing by eye.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.config import ConfigError, load_config
from gateway.mqtt.identity import GatewayIdentity, load_or_create
from gateway.mqtt.sealed import KEYSTORE_ID
from gateway.secrets import SecretError
from gateway.store.store import Store


def cmd_identity(args: argparse.Namespace) -> int:
    from drivers.registry import default_registry
    from gateway.cli import use_installed_credentials

    use_installed_credentials()  # the store key, where the unit loads it from
    try:
        cfg = load_config(args.config, default_registry())
        with Store.open(cfg.store.path, cfg.store.key) as store:
            key = load_or_create(store.keystore(KEYSTORE_ID))
    except (ConfigError, SecretError) as err:
        print(f"lockgate identity: {err}", file=sys.stderr)
        return 2
    identity = GatewayIdentity(key, cfg.gateway_id)
    print(f"# gateway {cfg.gateway_id}, identity fingerprint {identity.fingerprint}")
    print(f'gateway_id = "{cfg.gateway_id}"')
    print(f'gateway_key = "{identity.public_b64}"')
    return 0


def add_parser(sub: Any, config_argument: Any) -> None:
    p = sub.add_parser(
        "identity",
        help="print the gateway's MQTT identity, for operators to pin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_argument(p)
    p.set_defaults(func=cmd_identity)
