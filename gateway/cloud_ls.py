"""``lockgate cloud ls``: the workspace's spaces, entrances and devices, with ids and names.

A lock in the config names what it serves by Seam id (``space_ids``, ``acs_entrance_ids``,
``device_ids``); this lists those ids as the cloud knows them, so an installer can copy them
into ``lockgate.toml`` without opening Seam's console.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from gateway.cloud.client import CloudClient
from gateway.cloud.errors import CloudAuthError, CloudError
from gateway.config import ConfigError, GatewayConfig


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of directory object: its list path, items key, id field and config key."""

    name: str
    path: str
    items_key: str
    id_key: str
    config_key: str


KINDS = (
    Kind("spaces", "/spaces/list", "spaces", "space_id", "space_ids"),
    Kind(
        "entrances", "/acs/entrances/list", "acs_entrances", "acs_entrance_id", "acs_entrance_ids"
    ),
    Kind("devices", "/devices/list", "devices", "device_id", "device_ids"),
)
KIND_BY_NAME = {k.name: k for k in KINDS}


def display_name(obj: dict[str, Any]) -> str:
    """The name a person recognises: ``display_name``, ``name``, or ``properties.name``."""
    for key in ("display_name", "name"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    props = obj.get("properties")
    if isinstance(props, dict) and isinstance(props.get("name"), str):
        return str(props["name"])
    return ""


async def fetch(client: CloudClient, kind: Kind) -> list[tuple[str, str]]:
    """``(id, name)`` of every object of ``kind`` in the workspace, sorted by name."""
    items = await client.list_all(kind.path, kind.items_key)
    rows = [
        (str(obj[kind.id_key]), display_name(obj))
        for obj in items
        if isinstance(obj, dict) and isinstance(obj.get(kind.id_key), str)
    ]
    return sorted(rows, key=lambda row: (row[1].lower(), row[0]))


def client_for(cfg: GatewayConfig) -> CloudClient:
    """A cloud client with the gateway's own endpoint and key (read from its secret file)."""
    return CloudClient(
        str(cfg.cloud.endpoint), cfg.cloud.api_key.read_text().strip(), max_retries=1
    )


async def list_kinds(cfg: GatewayConfig, kinds: Sequence[Kind], out: TextIO) -> None:
    async with client_for(cfg) as client:
        for kind in kinds:
            rows = await fetch(client, kind)
            title = f"{kind.name} ({len(rows)}) — use the ids in a lock's {kind.config_key}:"
            print(title, file=out)
            width = max((len(i) for i, _ in rows), default=0)
            for obj_id, name in rows:
                print(f"  {obj_id:<{width}}  {name}", file=out)


def cmd_cloud_ls(args: argparse.Namespace) -> int:
    from gateway.cli import load_or_report

    cfg = load_or_report(args.config)
    if cfg is None:
        return 2
    kinds = KINDS if args.what == "all" else (KIND_BY_NAME[args.what],)
    try:
        asyncio.run(list_kinds(cfg, kinds, sys.stdout))
    except CloudAuthError:
        print(
            f"the cloud refused the API key ({cfg.cloud.endpoint}): check the file or credential "
            "named by cloud.api_key in the config",
            file=sys.stderr,
        )
        return 1
    except (CloudError, ConfigError, OSError) as err:
        print(f"could not list from {cfg.cloud.endpoint}: {err}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any, config_argument: Any) -> None:
    p = sub.add_parser(
        "cloud",
        help="list the workspace's spaces, entrances and devices (ids for the config)",
        description=(
            "List the objects of the Seam workspace this gateway's API key opens, with the ids a "
            "lock's space_ids, acs_entrance_ids and device_ids take."
        ),
    )
    cloud_sub = p.add_subparsers(dest="cloud_command", required=True)
    ls = cloud_sub.add_parser(
        "ls",
        help="list spaces, entrances and devices",
        description="List spaces, entrances and devices with their ids and names.",
    )
    ls.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["all", *KIND_BY_NAME],
        help="what to list (default: all)",
    )
    config_argument(ls)
    ls.set_defaults(func=cmd_cloud_ls)
