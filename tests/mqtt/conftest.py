"""Fixtures: a real Mosquitto on a free port, operator keys, a running gateway with its plane,
and a requester connected to the same broker (it verifies every answer's signature)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lockgate_sim.broker import Mosquitto

from tests.mqtt.harness import (
    Operators,
    Requester,
    Site,
    broker_options,
    running_site,
    write_operator_keys,
)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def operators(tmp_path: Path) -> Operators:
    return write_operator_keys(tmp_path)


@pytest.fixture
async def site(tmp_path: Path, broker: Mosquitto, operators: Operators) -> AsyncIterator[Site]:
    async with running_site(tmp_path / "gw", broker, operators) as s:
        yield s


@pytest.fixture
async def requester(site: Site) -> AsyncIterator[Requester]:
    async with Requester(broker_options(site.broker), site.topics, identity=site.identity) as r:
        yield r
