"""The ``lockgate`` command: ``run``, ``check-config``, and the subcommands other parts add.

Secrets are never taken from the command line: the config names files or systemd credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from drivers.registry import default_registry
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.logs import setup_logging

DESCRIPTION = """\
Lockgate: the access gateway daemon and its tools. Every command that reads the gateway's
configuration takes -c/--config FILE (default /etc/lockgate/lockgate.toml). Run
'lockgate COMMAND --help' for one command's help."""

DEFAULT_CONFIG = "/etc/lockgate/lockgate.toml"
CONFIG_ENV = "LOCKGATE_CONFIG"
"""Names another default config file (a second gateway on one box, a test's directory)."""
DEFAULT_CREDENTIALS = "/etc/lockgate/credentials"
"""Where the installed unit's LoadCredential= reads the secrets from (scripts/install.sh)."""

log = logging.getLogger("lockgate")


def _load(path: Path) -> GatewayConfig:
    return load_config(path, default_registry())


def load_or_report(path: Path) -> GatewayConfig | None:
    """The config, or ``None`` after printing why it cannot be used (one line per fault)."""
    use_installed_credentials()
    try:
        return _load(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def config_argument(p: argparse.ArgumentParser) -> None:
    """The one way every subcommand takes the gateway's config file."""
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG),
        metavar="FILE",
        help=f"the gateway's config file (default ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lockgate")
    except PackageNotFoundError:
        return "unknown"


def refused(cfg: GatewayConfig) -> bool:
    """Print every fault ``run`` would refuse to start on (one line each); True if any."""
    from gateway.preflight import preflight

    faults = preflight(cfg)
    for fault in faults:
        print(f"lockgate: {fault}", file=sys.stderr)
    return bool(faults)


def use_installed_credentials(explicit: Path | None = None) -> None:
    """Outside the unit, ``credential = NAME`` secrets are read where the unit loads them from
    (``--credentials-dir``, else ``$CREDENTIALS_DIRECTORY``, else the installer's directory), so
    an installer's commands at the box read the same secrets as the service."""
    credentials = explicit
    if credentials is None and "CREDENTIALS_DIRECTORY" not in os.environ:
        default = Path(DEFAULT_CREDENTIALS)
        credentials = default if default.is_dir() else None
    if credentials is not None:
        os.environ["CREDENTIALS_DIRECTORY"] = str(credentials)


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.config_file is not None:  # the older positional form
        args.config = args.config_file
    use_installed_credentials(args.credentials_dir)
    try:
        cfg = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if refused(cfg):
        return 2
    print(f"{args.config}: OK — gateway {cfg.gateway_id}, {len(cfg.locks)} locks")
    for lock in cfg.locks:
        print(f"  {lock.id}: {lock.driver.type}")
    return 0


async def _serve(cfg: GatewayConfig) -> None:
    from gateway.daemon import Gateway
    from gateway.extensions import gateway_extensions
    from gateway.supervise import announce_stopping

    registry = default_registry()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(cfg, registry, extra_tasks=gateway_extensions(cfg)) as gw:
        # STOPPING=1 on a signal, lock operations in flight finish (bounded), then the tasks end.
        await gw.serve(stop, on_stop=announce_stopping())


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.secrets import SecretError
    from gateway.store.crypto import StoreKeyError
    from gateway.store.db import StoreError, StoreFullError

    try:
        cfg = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if refused(cfg):
        return 2  # a file must be fixed first: the unit does not restart on 2
    setup_logging(args.log_level or cfg.log_level)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(cfg))
    except StoreFullError:
        raise  # not a file to fix: a restart may find room
    except (StoreError, StoreKeyError, SecretError) as err:
        # What the checks above passed but changed before the gateway opened it.
        print(f"lockgate: {err}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockgate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lockgate {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "check-config",
        help="check the config file and everything it names, then exit",
        description=(
            "Check the config file and the files it names. Exits 0 when 'lockgate run' would "
            "start with it, 2 otherwise, with one line per fault saying what to fix."
        ),
    )
    config_argument(p)
    p.add_argument(
        "--credentials-dir",
        type=Path,
        metavar="DIR",
        help="where the 'credential = NAME' secrets are (default: $CREDENTIALS_DIRECTORY, "
        f"else {DEFAULT_CREDENTIALS}, where the installed unit loads them from)",
    )
    p.add_argument("config_file", nargs="?", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser(
        "run",
        help="run the gateway daemon (what the systemd unit starts)",
        description="Run the gateway: sync from the cloud, keep the locks in line, decide.",
    )
    config_argument(p)
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override the config's log_level",
    )
    p.set_defaults(func=cmd_run)
    from gateway.extensions import add_subcommands

    add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
