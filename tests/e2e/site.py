"""A whole site in one process: the fake cloud, simulated locks, and the gateway.

Nothing in ``gateway/`` knows the cloud is fake: the gateway gets a URL and an API key file,
and its locks are ordinary ``sim`` drivers from the config.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockgate_sim.driver import SimDriver
from lockgate_sim.lock import SimLock

from drivers.registry import DriverRegistry, default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.config import GatewayConfig, parse_config
from gateway.daemon import Gateway

WAIT = 2.0
"""The issue's promise: a change reaches an online lock within 2 s of the sync."""


@dataclass
class Site:
    cloud: FakeCloudServer
    gateway: Gateway
    clock: FakeClock
    space_a: str
    space_b: str
    user: str
    sims: dict[str, SimLock]
    radio: Any = None
    """The BLE simulator, when the locks are on BLE (a phone joins its radio)."""

    def lock(self, lock_id: str) -> SimLock:
        return self.sims[lock_id]

    def held(self, lock_id: str) -> set[str]:
        return {c.credential_id for c in self.lock(lock_id).list_credentials()}

    async def until(self, lock_id: str, predicate: Callable[[], bool], wait: float = WAIT) -> None:
        async with asyncio.timeout(wait):
            await self.gateway.locks[lock_id].wait_for(predicate)

    async def until_held(self, lock_id: str, want: set[str], wait: float = WAIT) -> None:
        """Wait until the lock holds exactly the credentials ``want``."""
        await self.until(lock_id, lambda: self.held(lock_id) == want, wait)

    async def sync(self, *, full: bool = False) -> None:
        async with asyncio.timeout(WAIT):
            await self.gateway.sync_loop.sync_now(full=full)

    def grant(self, *, space: str, modes: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self.cloud.state.grants.create(
            user_identity_id=self.user, space_ids=[space], requested_access_methods=modes, **kw
        )

    def outbox(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.gateway.store.outbox.entries()]


def site_config(
    tmp: Path,
    cloud_url: str,
    key_file: Path,
    locks: list[dict[str, Any]],
    registry: DriverRegistry | None = None,
    **extra: Any,
) -> GatewayConfig:
    data: dict[str, Any] = {
        "gateway_id": "site-test",
        "cloud": {"endpoint": cloud_url, "api_key": {"file": str(key_file)}, "max_retries": 0},
        "store": {"path": str(tmp / "lockgate.db"), "key": {"file": str(tmp / "store.key")}},
        "reconcile": {"lead_time_s": 600, "retry_min_s": 0.5, "retry_max_s": 5},
        "locks": locks,
    }
    data.update(extra)
    return parse_config(data, registry or default_registry(), "test")


def write_secret(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return path


def daemon_toml(
    tmp: Path,
    cloud_url: str,
    api_key: str,
    *,
    gateway_id: str,
    poll_interval_s: float,
    db: Path | None = None,
    head: str = "",
    cloud_extra: str = "",
    tail: str = "",
) -> Path:
    """Write the config file a ``lockgate run`` test process reads: the API key as a private
    file, the cloud, the store (in ``tmp`` unless ``db``), the clock without kernel sync.
    ``head`` goes before the ``[cloud]`` table, ``cloud_extra`` into it, ``tail`` after the
    rest (locks, mqtt ...)."""
    write_secret(tmp / "api-key", api_key)
    path = tmp / "lockgate.toml"
    path.write_text(
        f"""
gateway_id = "{gateway_id}"
{head}
[cloud]
endpoint = "{cloud_url}"
api_key = {{ file = "{tmp / "api-key"}" }}
poll_interval_s = {poll_interval_s}
{cloud_extra}
[store]
path = "{db or tmp / "lockgate.db"}"
key = {{ file = "{tmp / "store.key"}" }}
[time]
require_kernel_sync = false
{tail}"""
    )
    return path


LOCK_IDS = ("front", "back", "office")


@asynccontextmanager
async def _links(
    link: str, tmp: Path, lock_options: dict[str, Any], clock: FakeClock
) -> AsyncIterator[
    tuple[dict[str, dict[str, Any]], dict[str, SimLock], dict[str, str], Any]
]:
    """Per lock: driver options, the simulated lock, and a pairing secret (if it needs one)."""
    if link == "sim":
        yield {i: {"type": "sim", **lock_options} for i in LOCK_IDS}, {}, {}, None
        return
    if link == "serial":
        from lockgate_sim.serial_testing import serial_options, serial_site

        async with serial_site(lock_ids=list(LOCK_IDS), state_dir=tmp, now=clock.now) as bus:
            yield (
                {i: serial_options(bus, i).model_dump(mode="json") for i in LOCK_IDS},
                dict(bus.locks),
                {i: bus.pairing_secret(i) for i in LOCK_IDS},
                None,
            )
        return
    if link == "ble":
        from lockgate_sim.ble.simulator import BleSimulator

        async with BleSimulator(state_dir=tmp, now=clock.now) as radio:
            ble_locks = {i: await radio.add_lock(i) for i in LOCK_IDS}
            hci = await radio.expose("gateway")
            yield (
                {
                    i: {
                        "type": "ble",
                        "device_id": lock.device_id.hex(),
                        "backend": "lockgate_sim.ble.remote:hci_backends",
                        "adapter": hci.client_spec,
                        "max_connections": 3,
                        "scan_timeout": 2.0,
                        "connect_timeout": 2.0,
                        "reconnect_min": 0.05,
                        "reconnect_max": 0.5,
                    }
                    for i, lock in ble_locks.items()
                },
                {i: lock.lock for i, lock in ble_locks.items()},
                {i: lock.pairing_secret for i, lock in ble_locks.items()},
                radio,
            )
        return
    if link == "nuki":
        from lockgate_sim.ble.simulator import BleSimulator

        async with BleSimulator(state_dir=tmp, now=clock.now) as radio:
            nukis = {i: await radio.add_nuki(i) for i in LOCK_IDS}
            hci = await radio.expose("gateway")
            yield (
                {
                    i: {
                        "type": "nuki",
                        "address": lock.address,
                        "backend": "lockgate_sim.ble.remote:hci_backends",
                        "adapter": hci.client_spec,
                        "max_connections": 3,
                        "scan_timeout": 2.0,
                        "connect_timeout": 2.0,
                        "reply_timeout": 2.0,
                        "reconnect_min": 0.05,
                        "reconnect_max": 0.5,
                    }
                    for i, lock in nukis.items()
                },
                {},
                {i: str(lock.model.security_pin) for i, lock in nukis.items()},
                radio,
            )
        return
    raise ValueError(link)


@asynccontextmanager
async def running_site(
    tmp: Path,
    clock: FakeClock,
    *,
    link: str = "sim",
    lock_options: dict[str, Any] | None = None,
) -> AsyncIterator[Site]:
    async with (
        FakeCloudServer(now=clock.now) as cloud,
        _links(link, tmp, lock_options or {}, clock) as (options, sims, secrets, radio),
    ):
        state = cloud.state
        space_a = state.add_space(name="Building A")["space_id"]
        space_b = state.add_space(name="Building B")["space_id"]
        user = state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
        key_file = write_secret(tmp / "api-key", cloud.api_key)
        spaces = {"front": space_a, "back": space_a, "office": space_b}
        cfg = site_config(
            tmp,
            cloud.url,
            key_file,
            [{"id": i, "space_ids": [spaces[i]], "driver": options[i]} for i in LOCK_IDS],
        )
        async with Gateway(
            cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True
        ) as gw, gw.serving():
            for lock_id, secret in secrets.items():
                await gw.commission(lock_id, secret)
            if not sims and link == "sim":
                sims = {}
                for lock_id in LOCK_IDS:
                    driver = gw.locks[lock_id].handle.driver
                    assert isinstance(driver, SimDriver)
                    sims[lock_id] = driver.sim
            site = Site(cloud, gw, clock, space_a, space_b, user, sims, radio)
            await site.sync()
            yield site
