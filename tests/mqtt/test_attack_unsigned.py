"""Attacker's side of issue 10, finding 8 (the management plane's part): what anyone the broker
lets publish can do without a signature.

* Home Assistant's ``set`` topic: every message used to start a task of its own, so a flood
  (Home Assistant misbehaving, or any client the ACL lets write there) piled up unbounded tasks
  waiting for the lock.
* Unsigned ``lock_state`` used to read the lock live, connecting to it first: a loop of them
  kept a sleeping BLE lock awake and drained its battery.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lockgate_sim.ble.simulator import BleSimulator
from lockgate_sim.broker import Mosquitto

from drivers.ble.driver import BleDriver
from drivers.registry import default_registry
from tests.mqtt.harness import (
    WAIT,
    Operators,
    Requester,
    Watcher,
    broker_options,
    running_site,
)

FLOOD = 300


def ha_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("mqtt-ha:"))


async def test_attack_home_assistant_set_flood_costs_one_task_per_lock(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    mqtt = {"homeassistant_discovery": True}
    async with running_site(tmp_path / "gw", broker, operators, mqtt=mqtt) as site:
        opts = broker_options(broker)
        topic = site.topics.lock_state("front")
        async with (
            Requester(opts, site.topics, identity=site.identity) as r,
            Watcher(opts, topic) as w,
        ):
            await r.request("unlock", {"lock_id": "front"}, sign_as=operators.signer("olga"))
            await w.until(lambda: w.json(topic)["bolt"] == "unlocked")
            rec = site.gw.locks["front"]
            async with rec.handle.session():  # the lock is busy while the flood comes in
                for _ in range(FLOOD):
                    await r.publish(site.topics.ha_set("front"), b"LOCK")
                for n in range(10):  # unknown locks cost nothing at all
                    await r.publish(site.topics.ha_set(f"ghost-{n}"), b"LOCK")
                # A round trip: every message before it has been received and dispatched.
                assert (await r.request("status"))["status"] == "ok"
                assert ha_tasks() <= 1, f"{ha_tasks()} tasks for one lock's Home Assistant set"
            # The door still ends up as Home Assistant asked, once the lock is free.
            await w.until(lambda: w.json(topic)["bolt"] == "locked")
            async with asyncio.timeout(WAIT):
                while ha_tasks():
                    await r.request("status")


async def test_attack_unsigned_lock_state_does_not_wake_a_sleeping_ble_lock(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with BleSimulator(state_dir=tmp_path) as radio:
        ble_lock = await radio.add_lock("ble-door")
        hci = await radio.expose("gateway")
        drivers = {
            "ble-door": {
                "type": "ble",
                "device_id": ble_lock.device_id.hex(),
                "backend": "lockgate_sim.ble.remote:hci_backends",
                "adapter": hci.client_spec,
                "scan_timeout": 2.0,
                "connect_timeout": 2.0,
                "idle_disconnect": 0.2,
            },
        }
        async with running_site(
            tmp_path / "gw",
            broker,
            operators,
            registry=default_registry(),
            lock_drivers=drivers,
        ) as site:
            rec = site.gw.locks["ble-door"]
            driver = rec.handle.driver
            assert isinstance(driver, BleDriver)
            # A commissioned lock in service, asleep: its link dropped after idle_disconnect.
            await site.gw.commission("ble-door", ble_lock.pairing_secret, timeout_s=WAIT)
            async with asyncio.timeout(WAIT):
                await rec.wait_for(lambda: rec.health.last_pass_at is not None)
                await driver.conn.wait_for(lambda: not driver.conn.link_up)
            assert rec.handle.connected and not driver.link_up  # in service, asleep

            def radio_use() -> tuple[int, int, int]:
                stats = driver.conn.stats
                return stats.connects, stats.connect_failures, driver.carrier.stats.datagrams_sent

            before = radio_use()
            async with Requester(broker_options(broker), site.topics, identity=site.identity) as r:
                answers = [
                    await r.request("lock_state", {"lock_id": "ble-door"}) for _ in range(20)
                ]
                assert radio_use() == before, "unsigned reads brought the lock's radio up"
                for answer in answers:
                    assert answer["status"] == "ok", answer
                    assert answer["data"]["live"] is False  # the last reading, said so
                refused = await r.request("credentials", {"lock_id": "ble-door"})
                assert refused["status"] == "error"
                assert refused["error"]["code"] == "unauthorised"
                assert radio_use() == before
                # A signed read may wake it (an operator who means it).
                signed = await r.request(
                    "lock_state", {"lock_id": "ble-door"}, sign_as=operators.signer("vera")
                )
                assert signed["status"] == "ok", signed
                assert signed["data"]["live"] is True
                assert radio_use() != before
