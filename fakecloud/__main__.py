"""``python -m fakecloud``: run the fake cloud standalone until SIGINT/SIGTERM.

The API key is read from ``--api-key-file`` (created with a random key, mode 0600, when the
file does not exist); likewise the control token from ``--control-token-file``, without which
the ``/_control/`` routes are off. Neither secret is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from fakecloud.seed import DEMO_SEED
from fakecloud.server import FakeCloudServer, new_api_key


def _secret(path: Path, make: str) -> tuple[str, bool]:
    """The secret in ``path``; writes ``make`` there first when the file does not exist."""
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise SystemExit(f"{path} is empty")
        return text, False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(make + "\n")
    return make, True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fakecloud", description=__doc__)
    parser.add_argument("--seed", type=Path, default=DEMO_SEED, help="seed JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key-file", type=Path, required=True)
    parser.add_argument("--control-token-file", type=Path)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    api_key, made_key = _secret(args.api_key_file, new_api_key())
    token = None
    if args.control_token_file is not None:
        token, made_token = _secret(args.control_token_file, new_api_key())
    server = FakeCloudServer(
        seed=args.seed, api_key=api_key, control_token=token, host=args.host, port=args.port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"fakecloud listening on {server.url}", flush=True)
        if made_key:
            print(f"new API key written to {args.api_key_file}", flush=True)
        if token is None:
            print("control plane off (no --control-token-file)", flush=True)
        elif made_token:
            print(f"new control token written to {args.control_token_file}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
