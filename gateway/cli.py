"""The ``lockgate`` command: ``run``, ``check-config``, and the subcommands other parts add.

Secrets are never taken from the command line: the config names files or systemd credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from drivers.registry import default_registry
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.logs import setup_logging

log = logging.getLogger("lockgate")


def _load(path: Path) -> GatewayConfig:
    return load_config(path, default_registry())


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"{args.config}: OK — gateway {cfg.gateway_id}, {len(cfg.locks)} locks")
    for lock in cfg.locks:
        print(f"  {lock.id}: {lock.driver.type}")
    return 0


async def _serve(cfg: GatewayConfig) -> None:
    from gateway.daemon import Gateway
    from gateway.extensions import gateway_extensions
    from gateway.supervise import shutdown

    registry = default_registry()
    async with Gateway(cfg, registry, extra_tasks=gateway_extensions(cfg)) as gw:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(gw.wait(), name="gateway")
        stopper = asyncio.create_task(stop.wait(), name="signal")
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if waiter.done():
            stopper.cancel()
            waiter.result()  # re-raise why the gateway stopped
        else:
            log.info("stopping on signal")
            # STOPPING=1, wait (bounded) for lock operations in flight, then cancel.
            await shutdown(gw, waiter)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    setup_logging(args.log_level or cfg.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(cfg))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lockgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-config", help="validate a config file and exit")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("run", help="run the gateway daemon")
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/lockgate/lockgate.toml"))
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
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
