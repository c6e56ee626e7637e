"""Reader health over MQTT, through a real Mosquitto: a libosdp reader on a pty comes online,
reports tamper, is unplugged and comes back; the lock's retained state and the event stream
say so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lockgate_sim.broker import Mosquitto
from lockgate_sim.osdp_readers import OsdpBus

from drivers.registry import default_registry
from tests.mqtt.harness import (
    Consumer,
    Operators,
    Watcher,
    broker_options,
    running,
    running_site,
    write_operator_keys,
)
from tests.osdp.conftest import site_key, write_key


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def operators(tmp_path: Path) -> Operators:
    return write_operator_keys(tmp_path)


def kinds(consumer: Consumer) -> list[Any]:
    return [e.get("kind") for e in consumer.events if e.get("lock_id") == "front"]


async def test_reader_health_is_state_and_events_over_mqtt(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    with OsdpBus() as bus:
        reader = bus.add(1, site_key(1))
        driver = {
            "type": "osdp",
            "port": bus.path,
            "baud": 115200,
            "address": 1,
            "key": {"file": str(write_key(tmp_path / "front.scbk", site_key(1)))},
        }
        async with running_site(
            tmp_path / "gw",
            broker,
            operators,
            registry=default_registry(),
            lock_drivers={"front": driver},
            mqtt={"lock_status_interval_s": 0.2, "state_interval_s": 0.2},
        ) as site:
            opts = broker_options(broker)
            state = site.topics.lock_state("front")
            consumer = Consumer(opts, site.topics.events, identifier="osdp-health")
            async with running(consumer.run(), "consumer"), Watcher(opts, state) as w:
                await consumer.subscribed()
                await w.until(lambda: (w.json(state) or {}).get("connected") is True, 10)
                assert (w.json(state)["driver"], w.json(state)["tamper"]) == ("osdp", False)

                reader.report_local(tamper=True, power_failure=False)
                await w.until(lambda: w.json(state)["tamper"] is True, 10)
                await consumer.until_count(2, within=10)  # online, tamper
                assert kinds(consumer)[:2] == ["online", "tamper"]

                bus.unplug(1)
                await w.until(lambda: w.json(state)["connected"] is False, 20)
                await consumer.until_count(3, within=10)
                assert kinds(consumer)[2] == "offline"

                bus.plug(1)
                await w.until(lambda: w.json(state)["connected"] is True, 10)
                await consumer.until_count(4, within=10)
                assert kinds(consumer)[3] == "online"
            event = consumer.events[0]
            assert event["source"] == "lock" and event["lock_id"] == "front"
