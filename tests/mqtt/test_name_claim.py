"""Two gateways configured with one ``gateway_id``: the second finds the name taken on the
broker before it connects under it, and the first is never thrown off."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lockgate_sim.broker import Mosquitto
from lockgate_sim.driver import SimDriver

from drivers.registry import DriverRegistry
from gateway.config import parse_config
from gateway.daemon import Gateway
from gateway.mqtt.connection import ReconnectPolicy
from gateway.mqtt.plane import MqttPlane
from tests.mqtt.harness import (
    WAIT,
    Operators,
    Watcher,
    broker_options,
    running_site,
    site_config,
)


async def test_a_second_gateway_with_the_same_id_does_not_take_the_name(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with running_site(tmp_path / "first", broker, operators) as first:
        avail = first.topics.availability
        registry = DriverRegistry([SimDriver])
        # Another box, another store (so another identity), the same gateway_id.
        cfg = parse_config(site_config(tmp_path / "second", broker, operators), registry, "t")
        made: asyncio.Future[MqttPlane] = asyncio.get_running_loop().create_future()

        async def plane_task(gw: Gateway) -> None:
            plane = MqttPlane(gw, policy=ReconnectPolicy(0.02, 0.2))
            made.set_result(plane)
            await plane.run()

        async with (
            Watcher(broker_options(broker), avail) as w,
            Gateway(cfg, registry, extra_tasks=[plane_task]) as gw,
            gw.serving(),
        ):
            async with asyncio.timeout(WAIT):
                second = await made
                await second.name_taken.wait()
            assert not second.online.is_set()
            assert second.connections == 0  # it never connected under the gateway's client id
            assert w.latest[avail] == b"online"
        assert first.plane.connections == 1  # the first gateway was never thrown off
        assert first.plane.online.is_set()


async def test_the_same_gateway_takes_its_own_name_again(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with running_site(tmp_path / "gw", broker, operators) as site:
        identity = site.plane.identity.public_b64
    async with running_site(tmp_path / "gw", broker, operators) as again:  # a restart
        assert again.plane.identity.public_b64 == identity
        assert not again.plane.name_taken.is_set()
