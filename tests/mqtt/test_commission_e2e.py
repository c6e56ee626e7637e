"""``lockgate ctl commission`` pairs a fresh serial lock (on a real pty) and a fresh BLE lock (on
the simulated radio) with a running gateway, end to end: the operator's tool in its own
process, the sealed pairing secret over a real broker, the gateway's lock handle commissioning
without connecting first (a fresh lock refuses any session), then a grant's PIN on both."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockgate_sim.broker import Mosquitto
from lockgate_sim.lock import SimLock

from drivers.registry import default_registry
from gateway.mqtt.auth import private_key_pem
from gateway.reconciler import LockReconciler
from gateway.secrets import create_secret_file
from tests.core.factories import code, grant
from tests.mqtt.fresh_locks import fresh_serial_and_ble_locks
from tests.mqtt.harness import WAIT, Operators, running_site
from tests.mqtt.test_ctl import lockgate, private

PIN = "482913"


async def test_ctl_commissions_a_fresh_serial_lock_and_a_fresh_ble_lock(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with fresh_serial_and_ble_locks(tmp_path) as fresh:
        drivers, secrets, sims = fresh.drivers, fresh.secrets, fresh.sims
        async with running_site(
            tmp_path / "gw",
            broker,
            operators,
            registry=default_registry(),
            lock_drivers=drivers,
            mqtt={"commission_timeout_s": 10.0},
        ) as site:
            gw = site.gw
            # Fresh locks: the gateway holds no link key, every pass is refused.
            for lock_id in drivers:
                rec = gw.locks[lock_id]

                def refused(r: LockReconciler = rec) -> bool:
                    return r.health.last_error_code is not None

                async with asyncio.timeout(WAIT):
                    await rec.wait_for(refused)

            key = private(tmp_path / "ada.pem", private_key_pem(operators.keys["ada"]))
            ctl = tmp_path / "ctl.toml"
            ctl.write_text(
                f'gateway_id = "{site.topics.gateway_id}"\n'
                f'host = "{broker.host}"\nport = {broker.port}\n'
                f'operator = "ada"\nprivate_key = "{key}"\ntimeout_s = 15.0\n'
            )
            now = datetime.now(UTC)
            site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", PIN)])
            for lock_id, secret in secrets.items():
                secret_file = tmp_path / f"{lock_id}.secret"
                create_secret_file(secret_file, secret.encode())
                rc, out, err = await lockgate(
                    "ctl",
                    "--config",
                    str(ctl),
                    "commission",
                    f"lock_id={lock_id}",
                    "--secret-file",
                    str(secret_file),
                )
                assert rc == 0, (lock_id, out, err)
                answer = json.loads(out)
                assert answer["data"] == {"lock_id": lock_id, "commissioned": True}
                assert secret not in out + err

            # Commissioned: the next pass puts the grant's PIN on each lock, read back by tag.
            for lock_id, sim in sims.items():
                rec = gw.locks[lock_id]

                def applied(
                    r: LockReconciler = rec, s: SimLock = sim, lid: str = lock_id
                ) -> bool:
                    return (
                        r.health.passes >= 1
                        and r.health.last_error_code is None
                        and {c.credential_id for c in s.list_credentials()} == {"m1"}
                        and gw.store.sync_states.counts(lid)["applied"] == 1
                    )

                async with asyncio.timeout(WAIT):
                    await rec.wait_for(applied)
                assert await sim.enter_code(PIN)
