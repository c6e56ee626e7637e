"""``lockgate commission LOCK --secret-file F`` on the gateway itself: the installer's command
reaches the running daemon over its local control socket, and a fresh serial lock (real pty)
and a fresh BLE lock (simulated radio) are paired and then receive a grant's PIN."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockgate_sim.broker import Mosquitto
from lockgate_sim.lock import SimLock

from drivers.registry import default_registry
from gateway.local_control import LocalControl
from gateway.reconciler import LockReconciler
from gateway.secrets import create_secret_file
from tests import toml_out
from tests.core.factories import code, grant
from tests.mqtt.fresh_locks import fresh_serial_and_ble_locks
from tests.mqtt.harness import WAIT, Operators, running_site, site_config

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))
PIN = "482913"


async def lockgate(*args: str, user: int | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        LOCKGATE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        user=user,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_commission_on_the_box_pairs_a_serial_and_a_ble_lock(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    sock = tmp_path / "run" / "control.sock"
    async with fresh_serial_and_ble_locks(tmp_path) as fresh:
        drivers, secrets, sims = fresh.drivers, fresh.secrets, fresh.sims
        mqtt = {"commission_timeout_s": 10.0}
        # The config file the installer's command reads: the same gateway, same locks.
        data = site_config(tmp_path / "gw", broker, operators, mqtt=mqtt, lock_drivers=drivers)
        data["control_socket"] = str(sock)
        config = tmp_path / "lockgate.toml"
        config.write_text(toml_out.dumps(data))

        # The daemon is not running yet: the command says so and what to do.
        secret_file = tmp_path / "label.secret"
        create_secret_file(secret_file, secrets["serial-door"].encode())
        rc, _, err = await lockgate(
            "commission", "serial-door", "--secret-file", str(secret_file), "-c", str(config)
        )
        assert rc == 1 and "not running" in err and "systemctl start lockgate" in err

        async with running_site(
            tmp_path / "gw",
            broker,
            operators,
            registry=default_registry(),
            lock_drivers=drivers,
            mqtt=mqtt,
        ) as site:
            gw = site.gw
            control = LocalControl(gw, sock)
            server = asyncio.create_task(control.run(), name="control")
            try:
                async with asyncio.timeout(WAIT):
                    await control.listening.wait()
                assert oct(sock.stat().st_mode & 0o777) == "0o600"
                for lock_id in drivers:  # fresh locks: every pass refused, the log says how
                    rec = gw.locks[lock_id]

                    def refused(r: LockReconciler = rec) -> bool:
                        return r.health.last_error_code is not None

                    async with asyncio.timeout(WAIT):
                        await rec.wait_for(refused)
                assert "lockgate commission serial-door" in (
                    gw.locks["serial-door"].health.last_error or ""
                )

                # Bad input changes nothing: an unknown lock, a wrong secret.
                rc, _, err = await lockgate(
                    "commission",
                    "no-such-door",
                    "--secret-file",
                    str(secret_file),
                    "-c",
                    str(config),
                )
                assert rc == 2 and "no-such-door" in err
                real = secrets["serial-door"]
                typo = ("B" if real[0] != "B" else "C") + real[1:]  # well formed, not its own
                wrong = tmp_path / "wrong.secret"
                create_secret_file(wrong, typo.encode())
                rc, out, err = await lockgate(
                    "commission", "serial-door", "--secret-file", str(wrong), "-c", str(config)
                )
                assert rc == 1 and "not commissioned" in err
                assert typo not in out + err and real not in out + err

                # Someone without root on the box cannot reach the socket at all.
                probe = (
                    "import socket, sys\n"
                    "s = socket.socket(socket.AF_UNIX)\n"
                    "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n"
                    "    print('refused')\nelse:\n    print('connected')\n"
                )
                nobody = await asyncio.create_subprocess_exec(
                    "/usr/bin/python3",
                    "-c",
                    probe,
                    str(sock),
                    stdout=asyncio.subprocess.PIPE,
                    user=65534,
                    cwd="/",
                )
                async with asyncio.timeout(WAIT):
                    said, _ = await nobody.communicate()
                assert said.strip() == b"refused"

                now = datetime.now(UTC)
                site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", PIN)])
                for lock_id, secret in secrets.items():
                    secret_file = tmp_path / f"{lock_id}.secret"
                    create_secret_file(secret_file, secret.encode())
                    rc, out, err = await lockgate(
                        "commission",
                        lock_id,
                        "--secret-file",
                        str(secret_file),
                        "-c",
                        str(config),
                    )
                    assert rc == 0, (lock_id, out, err)
                    assert f"{lock_id}: commissioned" in out
                    assert secret not in out + err

                for lock_id, sim in sims.items():
                    rec = gw.locks[lock_id]

                    def applied(
                        r: LockReconciler = rec, s: SimLock = sim, lid: str = lock_id
                    ) -> bool:
                        return (
                            r.health.last_error_code is None
                            and {c.credential_id for c in s.list_credentials()} == {"m1"}
                            and gw.store.sync_states.counts(lid)["applied"] == 1
                        )

                    async with asyncio.timeout(WAIT):
                        await rec.wait_for(applied)
                    assert await sim.enter_code(PIN)
            finally:
                server.cancel()
                await asyncio.wait({server})
        assert not sock.exists()


def test_the_unit_gives_the_socket_a_private_runtime_directory() -> None:
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "lockgate.service").read_text()
    assert "RuntimeDirectory=lockgate" in unit and "RuntimeDirectoryMode=0700" in unit
    assert os.path.basename("/run/lockgate/control.sock") == "control.sock"
