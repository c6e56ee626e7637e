"""The gateway's local control socket, for an installer at the box: ``lockgate commission``.

The running daemon listens on a Unix socket (``control_socket`` in the config; under systemd
``/run/lockgate/control.sock`` in the unit's ``RuntimeDirectory``, mode 0700). Only the
daemon's own user and root can connect: the directory and the socket say so, and the server
checks the peer's uid (``SO_PEERCRED``) as well. So the pairing secret goes from the
installer's shell to the daemon through the kernel, never over the network or the broker, and
the daemon, which already owns the lock's port or radio and its store, does the pairing.

One request per connection, one JSON object per line each way::

    -> {"command": "commission", "lock_id": "front-door", "pairing_secret": "..."}
    <- {"status": "ok"}   or   {"status": "error", "error": {"code": "...", "message": "..."}}

A request that cannot be read, an unknown command or lock, and a lock that refuses are answered
with an error and change nothing. The secret is never logged nor echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.errors import DriverError

if TYPE_CHECKING:
    from gateway.managed import ManagedGateway

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096
REQUEST_TIMEOUT_S = 10.0


def reply_error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class LocalControl:
    """Serves the control socket for one gateway."""

    def __init__(self, gw: ManagedGateway, path: Path) -> None:
        self.gw = gw
        self.path = path
        self.listening = asyncio.Event()
        """Set once the socket accepts connections."""

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command != "commission":
            return reply_error("unknown_command", f"unknown command {command!r} (commission)")
        lock_id = request.get("lock_id")
        secret = request.get("pairing_secret")
        if not isinstance(lock_id, str) or lock_id not in self.gw.locks:
            known = ", ".join(sorted(self.gw.locks)) or "none"
            return reply_error("unknown_lock", f"no lock {lock_id!r} in the config ({known})")
        if not isinstance(secret, str) or not secret.strip():
            return reply_error("invalid_args", "pairing_secret missing or empty")
        timeout = self.gw.config.mqtt.commission_timeout_s
        try:
            await self.gw.commission(lock_id, secret.strip(), timeout_s=timeout)
        except DriverError as err:
            log.warning(
                "commissioning %s from the control socket failed: %s",
                lock_id,
                err.message,
                extra={"lock": lock_id},
            )
            return reply_error(err.code, err.message)
        return {"status": "ok", "lock_id": lock_id}

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            uid = peer_uid(writer)
            if uid not in (0, os.geteuid()):
                answer = reply_error("forbidden", "only root and the gateway's user may ask")
            else:
                answer = await self._answer(reader)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing was done for it that needs an answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                line = await reader.readline()
        except TimeoutError:
            return reply_error("timeout", "no request within 10 s")
        except ValueError:  # longer than the reader's limit
            return reply_error("too_large", f"a request is at most {MAX_REQUEST_BYTES} bytes")
        try:
            request = json.loads(line)
        except ValueError:
            return reply_error("bad_request", "a request is one JSON object on one line")
        if not isinstance(request, dict):
            return reply_error("bad_request", "a request is one JSON object on one line")
        return await self.handle(request)

    async def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a process that died; we own the name now
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                self.serve_client, path=str(self.path), limit=MAX_REQUEST_BYTES
            )
        finally:
            os.umask(old_umask)
        log.info("control socket on %s (lockgate commission)", self.path)
        self.listening.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(OSError):
                self.path.unlink()


async def local_control(gw: ManagedGateway) -> None:
    """The extension task: serve the control socket while the gateway runs."""
    path = gw.config.control_socket
    if path is None:
        return
    await LocalControl(gw, path).run()


async def request(path: Path, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Send one request to a running gateway's control socket and return its answer."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    answer = json.loads(line) if line else {}
    if not isinstance(answer, dict):
        raise TypeError("the gateway's answer is not a JSON object")
    return answer


def read_pairing_secret(secret_file: Path | None) -> str:
    """The pairing secret from a private file, or typed at a prompt (never an argument)."""
    if secret_file is None:
        import getpass

        return getpass.getpass("pairing secret (from the lock's label): ").strip()
    from drivers.secrets import SecretRef

    return SecretRef(file=secret_file).read_text().strip()


def cmd_commission(args: Any) -> int:
    import sys

    from drivers.secrets import SecretError
    from gateway.cli import load_or_report

    cfg = load_or_report(args.config)
    if cfg is None:
        return 2
    if args.lock not in {lock.id for lock in cfg.locks}:
        known = ", ".join(lock.id for lock in cfg.locks) or "none"
        print(f"no lock {args.lock!r} in {args.config} (locks: {known})", file=sys.stderr)
        return 2
    path = cfg.control_socket
    if path is None:
        print("control_socket is off in the config: use 'lockgate ctl commission'", file=sys.stderr)
        return 2
    try:
        secret = read_pairing_secret(args.secret_file)
    except (SecretError, OSError) as err:
        print(f"cannot read the pairing secret: {err}", file=sys.stderr)
        return 2
    if not secret:
        print("the pairing secret is empty", file=sys.stderr)
        return 2
    message = {"command": "commission", "lock_id": args.lock, "pairing_secret": secret}
    timeout = cfg.mqtt.commission_timeout_s + 5
    try:
        answer = asyncio.run(request(path, message, timeout))
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            f"the gateway is not running (nothing listens on {path}): start it "
            "('systemctl start lockgate') and run this again",
            file=sys.stderr,
        )
        return 1
    except PermissionError:
        print(f"not allowed to reach {path}: run this as root (sudo)", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, ValueError, TypeError) as err:
        print(f"no answer from the gateway on {path}: {err or 'timed out'}", file=sys.stderr)
        return 1
    if answer.get("status") == "ok":
        print(f"{args.lock}: commissioned; the gateway now brings it in line with the grants")
        return 0
    error = answer.get("error") or {}
    print(
        f"{args.lock}: not commissioned: {error.get('message', 'no reason given')} "
        f"({error.get('code', 'error')})",
        file=sys.stderr,
    )
    return 1


def add_parser(sub: Any, config_argument: Any) -> None:
    p = sub.add_parser(
        "commission",
        help="pair a new lock with this gateway (the secret on its label), on the box itself",
        description=(
            "Pair a lock with the running gateway, from the gateway itself: the pairing secret "
            "(printed on the lock's label) is read from a private file (mode 600) or typed at "
            "the prompt, and handed to the daemon over its local control socket. A remote "
            "operator does the same with 'lockgate ctl commission lock_id=LOCK --secret-file F'."
        ),
    )
    p.add_argument("lock", help="the lock's id, as in the config")
    p.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help="file holding the pairing secret (mode 600); without it you are asked for it",
    )
    config_argument(p)
    p.set_defaults(func=cmd_commission)
