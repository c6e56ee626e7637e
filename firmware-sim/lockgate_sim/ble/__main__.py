"""``python -m lockgate_sim.ble``: the simulated BLE locks and phone as standalone programs.

``serve`` runs locks on a virtual radio and prints one JSON line (device ids, addresses,
pairing secrets, HCI endpoints) once they advertise; point the gateway's BLE locks at an
endpoint with ``adapter = "tcp-client:127.0.0.1:PORT"`` and
``backend = "lockgate_sim.ble.remote:hci_backends"``. ``phone`` presents a mobile key to a lock
over another endpoint; ``keygen`` makes a phone key and prints the public key for the cloud.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path

from drivers.ble import mobilekey as mk


async def serve(args: argparse.Namespace) -> None:
    from lockgate_sim.ble.simulator import BleSimulator

    state_dir = Path(args.state_dir) if args.state_dir else None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    async with BleSimulator(state_dir=state_dir) as sim:
        for lock_id in args.lock:
            lock = await sim.add_lock(lock_id)
            if args.mtu:
                lock.set_max_mtu(args.mtu)
            if args.advertising_interval_ms:
                lock.faults.advertising_interval_ms = args.advertising_interval_ms
                lock.refresh_advertising()
        for name in args.nuki:
            await sim.add_nuki(name)
        for i, port in enumerate(args.hci_port):
            await sim.expose(f"hci{i}", port)
        print(json.dumps(sim.describe()), flush=True)
        await asyncio.Event().wait()


async def phone(args: argparse.Namespace, private: bytes) -> int:
    from lockgate_sim.ble.backend import backends_for
    from lockgate_sim.ble.phone import SimPhone
    from lockgate_sim.ble.remote import central_over

    async with central_over(args.hci, "lockgate-phone") as central:
        result = await SimPhone("phone", backends_for(central), private_key=private).open(
            device_id=bytes.fromhex(args.device_id)
        )
    print(json.dumps({"allow": result.allow, "reason": result.reason}))
    return 0 if result.allow else 1


def keygen(args: argparse.Namespace) -> None:
    import os

    private = os.urandom(32)
    Path(args.key).write_text(base64.b64encode(private).decode() + "\n")
    Path(args.key).chmod(0o600)
    print(mk.public_key_text(mk.public_key_of(private)).decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockgate_sim.ble")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run simulated BLE locks")
    s.add_argument("--lock", action="append", default=[], help="lock id (repeat)")
    s.add_argument(
        "--nuki", action="append", default=[], help="a simulated Nuki lock's name (repeat)"
    )
    s.add_argument(
        "--hci-port",
        action="append",
        type=int,
        default=[],
        help="TCP port of an HCI endpoint on 127.0.0.1 (repeat; 0 = any)",
    )
    s.add_argument("--state-dir", help="keep each lock's flash here")
    s.add_argument("--mtu", type=int, help="largest ATT MTU the locks accept (23 = fault)")
    s.add_argument("--advertising-interval-ms", type=float, help="sleepy locks (e.g. 1000)")
    p = sub.add_parser("phone", help="present a mobile key to a lock")
    p.add_argument("--hci", required=True, help="bumble transport, e.g. tcp-client:127.0.0.1:7002")
    p.add_argument("--key", required=True, help="file with the phone's private key (keygen)")
    p.add_argument("--device-id", required=True, help="the lock's device id (16 hex digits)")
    k = sub.add_parser("keygen", help="make a phone key; prints the public key for the cloud")
    k.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    if args.command == "serve" and not (args.lock or args.nuki):
        parser.error("serve needs at least one --lock or --nuki")
    try:
        if args.command == "serve":
            asyncio.run(serve(args))
        elif args.command == "phone":
            private = base64.b64decode(Path(args.key).read_text().strip())
            return asyncio.run(phone(args, private))
        else:
            keygen(args)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
