"""The ``lockgate-sim`` command: the demo site, and the simulators' own command lines.

``lockgate-sim demo`` runs the whole site with a live view and a walk-through (docs/demo.md).
Every simulator module with a command line of its own (a ``main(argv)``, such as
``python -m lockgate_sim.serial_bus``) is a subcommand too, named after the module
(``lockgate-sim serial-bus``); its arguments are passed on as they are
(``lockgate-sim serial-bus --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.helptext import plain

log = logging.getLogger(__name__)

SKIP = ("lockgate_sim.cli", "lockgate_sim.demo")
"""Not simulators with a command line of their own."""

ToolMain = Callable[[list[str]], Any]


def _runnable(module_name: str) -> str:
    """What ``python -m`` takes: ``lockgate_sim.ble.__main__`` -> ``lockgate_sim.ble``."""
    return module_name.removesuffix(".__main__")


def _tool_name(module_name: str) -> str:
    """``lockgate_sim.serial_bus`` -> ``serial-bus``; ``lockgate_sim.ble.__main__`` -> ``ble``."""
    name = _runnable(module_name).removeprefix("lockgate_sim.")
    return name.replace(".", "-").replace("_", "-")


def available_tools() -> dict[str, tuple[str, ToolMain]]:
    """The simulator modules that have a ``main(argv)``: subcommand -> (help, main)."""
    import lockgate_sim

    found: dict[str, tuple[str, ToolMain]] = {}
    for info in pkgutil.walk_packages(lockgate_sim.__path__, "lockgate_sim."):
        if info.ispkg or info.name.startswith(SKIP):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception as err:  # a simulator being worked on must not break the others
            log.debug("%s cannot be loaded: %s", info.name, err)
            continue
        entry = getattr(module, "main", None)
        if callable(entry):
            runnable = f"python -m {_runnable(info.name)}"
            doc = (module.__doc__ or "").strip().splitlines()
            text = plain(doc[0]).replace("'", "").rstrip(".") if doc else ""
            text = text.removeprefix(f"{runnable}: ")
            found[_tool_name(info.name)] = (f"{text} ({runnable})", entry)
    return found


def _positive(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from lockgate_sim.demo.app import DemoOptions, run_demo

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    live = not args.no_live and sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb"
    opts = DemoOptions(
        live=live,
        duration=args.duration,
        keep_state=args.keep_state,
        serial=not args.no_serial,
        ble=not args.no_ble,
        mqtt=not args.no_mqtt,
    )
    try:
        return asyncio.run(run_demo(opts, sys.stdout))
    except KeyboardInterrupt:  # before the loop's own handler was in place
        return 130
    except FileExistsError as err:
        print(f"lockgate-sim demo: {err}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1


def build_parser(tools: dict[str, tuple[str, ToolMain]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockgate-sim", description=plain(__doc__.split("\n\n")[0])
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "demo",
        help="a whole site on this machine, with a live view and a walk-through",
        description="Start the fake cloud, simulated serial and BLE locks, a broker and the "
        "gateway; show what happens, and walk through a grant's life. Ctrl-C ends it.",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="end SECONDS after the start, once the walk-through is done (0: right after it);"
        " exit status 0 when every step went as expected. Without it the site stays up"
        " after the walk-through until Ctrl-C",
    )
    p.add_argument(
        "--no-live",
        action="store_true",
        help="print what happens line by line instead of the live view (the default when"
        " the output is not a terminal)",
    )
    p.add_argument(
        "--keep-state",
        type=Path,
        metavar="DIR",
        help="keep the site's state (store, locks' flash, logs) in DIR, empty or new;"
        " by default a temporary directory is used and removed at the end",
    )
    p.add_argument("--no-serial", action="store_true", help="leave the serial locks out")
    p.add_argument("--no-ble", action="store_true", help="leave the BLE lock and the phone out")
    p.add_argument("--no-mqtt", action="store_true", help="leave the broker out")
    p.set_defaults(func=cmd_demo)
    for name, (text, _) in sorted(tools.items()):
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    tools = available_tools()
    if args_in and args_in[0] in tools:  # its own arguments, passed on as they are
        result = tools[args_in[0]][1](args_in[1:])
        return result if isinstance(result, int) else 0
    args = build_parser(tools).parse_args(args_in)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
