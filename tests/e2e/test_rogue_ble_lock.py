"""End to end on the simulated radio (issue 10, finding 7): while the front door's BLE lock is
out of range, a device advertising as it (the five device-id bytes the lock broadcasts) shows
up. The running gateway connects to it once, finds another device id, raises a rogue-device
alert on its events, and as soon as the real lock is back, serves it: a new PIN reaches it."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import timedelta
from pathlib import Path

from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.lock import SimLock

from gateway.clock import FakeClock
from tests.e2e.site import running_site


async def test_a_clone_of_a_ble_lock_is_alerted_and_the_lock_is_served_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock, link="ble") as site:
        front = site.radio.locks["front"]
        await front.power_off()  # out of range
        sim = SimLock("rogue", now=clock.now)
        sim.link_keys.update(
            {
                "static": base64.b64encode(os.urandom(32)).decode(),
                "device_id": base64.b64encode(front.device_id[:5] + b"\xee\xee\xee").decode(),
                "pairing_secret": base64.b64encode(os.urandom(16)).decode(),
            }
        )
        async with BleLock(sim, site.radio.radio.device("rogue")) as rogue:
            grant = site.grant(
                space=site.space_a, modes=[{"mode": "code", "code": "246813"}],
                starts_at=clock.now() - timedelta(minutes=1),
                ends_at=clock.now() + timedelta(hours=1),
            )
            (method_id,) = grant["access_method_ids"]
            await site.sync()  # the front door's reconciler now needs its lock

            outbox = site.gateway.store.outbox
            async with asyncio.timeout(20):
                while not [e for e in site.outbox() if e["kind"] == "security_alert"]:
                    outbox.changed.clear()
                    await outbox.changed.wait()
            (alert,) = [e for e in site.outbox() if e["kind"] == "security_alert"]
            assert (alert["lock_id"], alert["reason"]) == ("front", "rogue_device")
            assert rogue.device_id.hex() in alert["detail"]

            await front.power_on()  # back in range; the clone keeps advertising
            site.gateway.locks["front"].wake()
            await site.until("front", lambda: method_id in site.held("front"), wait=20)
            assert rogue.stats.connections == 1
            assert "246813" not in repr(site.outbox())
