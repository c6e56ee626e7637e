"""``lockgate cloud ls`` and ``lockgate doctor`` against the fake cloud and a real Mosquitto,
run as an installer runs them: the installed command, a config file, one verdict per line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lockgate_sim.broker import Mosquitto, make_password_file

from fakecloud import DEMO_SEED, FakeCloudServer

LOCKGATE = Path(sys.executable).with_name("lockgate")
SEED = json.loads(DEMO_SEED.read_text())
SPACE = SEED["spaces"][0]
ENTRANCE = SEED["acs_entrances"][0]
BROKER_PASSWORD = "gw-password-123"


@dataclass
class Rig:
    tmp: Path
    cloud: FakeCloudServer
    broker: Mosquitto

    def secret(self, name: str, value: str) -> Path:
        path = self.tmp / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return path

    def config(
        self,
        *,
        api_key: str | None = None,
        space: str | None = None,
        password: str = BROKER_PASSWORD,
    ) -> Path:
        key = self.secret("api-key", api_key or self.cloud.api_key)
        pw = self.secret("mqtt-password", password)
        text = f"""
gateway_id = "doctor-test"
[cloud]
endpoint = "{self.cloud.url}"
api_key = {{ file = "{key}" }}
[store]
path = "{self.tmp / "lockgate.db"}"
key = {{ file = "{self.tmp / "store.key"}" }}
[mqtt]
enabled = true
host = "127.0.0.1"
port = {self.broker.port}
username = "doctor-test"
password = {{ file = "{pw}" }}
[[locks]]
id = "front-door"
space_ids = ["{space or SPACE["space_id"]}"]
acs_entrance_ids = ["{ENTRANCE["acs_entrance_id"]}"]
[locks.driver]
type = "sim"
"""
        path = self.tmp / "lockgate.toml"
        path.write_text(text)
        return path


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    pw = make_password_file(tmp_path / "passwd", {"doctor-test": BROKER_PASSWORD})
    async with (
        FakeCloudServer(seed=DEMO_SEED) as cloud,
        Mosquitto(tmp_path / "broker", password_file=pw) as broker,
    ):
        yield Rig(tmp_path, cloud, broker)


async def lockgate(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(LOCKGATE), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cloud_ls_lists_ids_and_names(rig: Rig) -> None:
    rc, out, err = await lockgate("cloud", "ls", "-c", str(rig.config()))
    assert rc == 0, err
    for space in SEED["spaces"]:
        assert f"{space['space_id']}  {space['name']}" in out
    for entrance in SEED["acs_entrances"]:
        assert entrance["acs_entrance_id"] in out and entrance["display_name"] in out
    for device in SEED["devices"]:
        assert device["device_id"] in out
    assert "space_ids" in out and "acs_entrance_ids" in out and "device_ids" in out
    rc, out, _ = await lockgate("cloud", "ls", "spaces", "-c", str(rig.config()))
    assert rc == 0 and SPACE["space_id"] in out and ENTRANCE["acs_entrance_id"] not in out


async def test_doctor_all_good(rig: Rig) -> None:
    rc, out, err = await lockgate("doctor", "-c", str(rig.config()))
    lines = out.splitlines()
    assert rc == 0, out + err
    assert any(line.startswith("ok") and "cloud:" in line for line in lines)
    assert any(
        line.startswith("ok") and "scope front-door" in line and SPACE["name"] in line
        for line in lines
    )
    assert any(line.startswith("ok") and "broker:" in line for line in lines)
    assert any(line.startswith("ok") and "clock:" in line for line in lines)
    assert lines[-1].endswith("checks passed") and "FAIL" not in out


async def test_doctor_names_each_fault_and_no_secret(rig: Rig) -> None:
    bad_key = "seam_wrong_key_0123456789"
    cfg = rig.config(api_key=bad_key, password="not-the-password")
    rc, out, err = await lockgate("doctor", "-c", str(cfg))
    assert rc == 1
    assert "FAIL  cloud:" in out and "refused the API key" in out
    assert "FAIL  broker:" in out and "refused the login" in out
    for secret in (bad_key, rig.cloud.api_key, "not-the-password", BROKER_PASSWORD):
        assert secret not in out + err


async def test_doctor_finds_a_scope_the_workspace_lacks(rig: Rig) -> None:
    rc, out, _ = await lockgate("doctor", "-c", str(rig.config(space="spc_not_there")))
    assert rc == 1
    (line,) = [line for line in out.splitlines() if "scope front-door" in line]
    assert line.startswith("FAIL") and "spc_not_there" in line and "lockgate cloud ls" in line


async def test_doctor_with_a_broker_that_is_down(rig: Rig) -> None:
    cfg = rig.config()
    await rig.broker.stop()
    rc, out, _ = await lockgate("doctor", "-c", str(cfg))
    assert rc == 1 and "FAIL  broker:" in out and "unreachable" in out
    assert "ok    cloud:" in out
