"""Supervision against a real gateway in-process: the watchdog's judgement, and a clean stop.

The gateway runs simulated locks with the cloud on a port nobody listens on (it serves its
locks all the same). A driver whose ``put`` waits for the test stands in for a lock operation
that is slow, or that hangs for good.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Literal

import pytest
from lockgate_sim.driver import SimDriver, SimOptions

from drivers.base import BatchResult, Credential, DriverContext, DriverOptions
from drivers.registry import DriverRegistry
from gateway.config import load_config
from gateway.daemon import Gateway
from gateway.models import AccessMethod, Grant
from gateway.notify import SdNotifier
from gateway.store.sync_state import SyncStatus
from gateway.supervise import Watchdog, announce_stopping
from tests.deploy.conftest import NotifySocket, Site, unused_port

PIN = "482913"


class GatedOptions(SimOptions):
    type: Literal["gated"] = "gated"  # type: ignore[assignment]


class GatedDriver(SimDriver):
    """The simulated lock, but every put waits until the test sets :attr:`release`."""

    type_name = "gated"
    options_model = GatedOptions

    def __init__(self, lock_id: str, options: DriverOptions, ctx: DriverContext) -> None:
        super().__init__(lock_id, options, ctx)
        self.put_started = asyncio.Event()
        self.release = asyncio.Event()

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        self.put_started.set()
        await self.release.wait()
        return await super().put_credentials(batch)


REGISTRY = DriverRegistry([SimDriver, GatedDriver])


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def door_site(site: Site, monkeypatch: pytest.MonkeyPatch) -> Site:
    """One lock, ``door``, and one grant with a PIN for it already in the store."""
    site.write_secrets("seam_test_key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(site.credentials))
    site.seed(
        [Grant("g1", None, None, space_ids=frozenset({"s1"}))],
        [AccessMethod("m1", "g1", "code", secret=PIN.encode())],
    )
    return site


def start(site: Site, driver: str) -> Gateway:
    site.write_config(f"http://127.0.0.1:{unused_port()}", {"door": ("s1",)}, driver=driver)
    return Gateway(load_config(site.config, REGISTRY), REGISTRY)


@dataclasses.dataclass
class Serving:
    gw: Gateway
    stop: asyncio.Event
    task: asyncio.Task[None]


def serve(gw: Gateway, notify_socket: NotifySocket, grace_s: float) -> Serving:
    stop = asyncio.Event()
    notifier = SdNotifier(notify_socket.address)
    task = asyncio.create_task(
        gw.serve(stop, grace_s=grace_s, on_stop=announce_stopping(notifier)), name="serve"
    )
    return Serving(gw, stop, task)


@pytest.fixture
async def gated(door_site: Site) -> AsyncIterator[Gateway]:
    """The gateway, not yet serving: its first pass will block inside ``put``."""
    async with start(door_site, "gated") as gw:
        yield gw


async def blocked(gw: Gateway, notify_socket: NotifySocket, grace_s: float) -> Serving:
    serving = serve(gw, notify_socket, grace_s)
    async with asyncio.timeout(5):
        await gate(gw).put_started.wait()
    return serving


def gate(gw: Gateway) -> GatedDriver:
    driver = gw.locks["door"].handle.driver
    assert isinstance(driver, GatedDriver)
    return driver


# --- stopping ------------------------------------------------------------------------------


async def test_stop_lets_the_operation_in_flight_finish(
    gated: Gateway, notify_socket: NotifySocket
) -> None:
    gw = gated
    serving = await blocked(gw, notify_socket, grace_s=10)
    serving.stop.set()

    msg = await notify_socket.until(lambda m: "STOPPING" in m, within=5)
    assert msg["STOPPING"] == "1"
    # STOPPING=1 is out; the stop now waits for the put, and nothing was cancelled.
    assert not serving.task.done()
    assert gw.ready.is_set()
    assert gate(gw).sim.list_credentials() == []

    gate(gw).release.set()
    async with asyncio.timeout(5):
        await serving.task  # serve() returns: a clean stop, not a cancellation
    assert not gw.ready.is_set()
    # The pass finished: the PIN is on the lock and the store says so.
    assert [c.credential_id for c in gate(gw).sim.list_credentials()] == ["m1"]
    assert gw.store.sync_states.for_lock("door")["m1"].state is SyncStatus.APPLIED


async def test_stop_cancels_an_operation_that_outlives_the_grace(
    gated: Gateway,
    notify_socket: NotifySocket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = gated
    serving = await blocked(gw, notify_socket, grace_s=0.2)
    with caplog.at_level(logging.WARNING, logger="gateway.handle"):
        serving.stop.set()
        async with asyncio.timeout(5):
            await serving.task
    assert notify_socket.queued()[0]["STOPPING"] == "1"
    [warning] = [r for r in caplog.records if r.name == "gateway.handle"]
    assert getattr(warning, "lock", None) == "door"
    # Cancelled before the lock stored anything; the store does not claim otherwise, and the
    # next start puts it again.
    assert gate(gw).sim.list_credentials() == []
    assert gw.store.sync_states.for_lock("door")["m1"].state is SyncStatus.PENDING


# --- the watchdog's judgement ---------------------------------------------------------------


@pytest.fixture
async def plain(door_site: Site) -> AsyncIterator[Gateway]:
    async with start(door_site, "sim") as gw, gw.serving():
        yield gw


def pings(messages: list[dict[str, str]]) -> list[str]:
    return [m["WATCHDOG"] for m in messages if "WATCHDOG" in m]


async def test_watchdog_is_withheld_while_a_lock_operation_hangs(
    plain: Gateway, notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeMonotonic()
    wd = Watchdog(
        plain, SdNotifier(notify_socket.address), 30.0, stall_after_s=600, monotonic=clock
    )
    wd.tick("READY=1")
    [first] = notify_socket.queued()
    assert first["READY"] == "1"
    assert first["WATCHDOG"] == "1"
    assert first["STATUS"].startswith("1 lock")

    door = plain.locks["door"]
    with caplog.at_level(logging.ERROR, logger="gateway.supervise"):
        async with door.handle.hold():  # a driver call that does not come back
            for t in (0.0, 300.0, 599.0):
                clock.t = t
                wd.tick()
                assert pings(notify_socket.queued()) == ["1"], t
            clock.t = 600.0
            wd.tick()
            [msg] = notify_socket.queued()
            assert msg["WATCHDOG"] == "trigger"
            assert msg["STATUS"].startswith("watchdog withheld: lock door")
            clock.t = 900.0
            wd.tick()
            assert pings(notify_socket.queued()) == []
    [error] = [r for r in caplog.records if r.name == "gateway.supervise"]
    assert getattr(error, "lock", None) == "door"

    clock.t = 901.0
    wd.tick()
    [msg] = notify_socket.queued()
    assert msg["WATCHDOG"] == "1"
    assert "withheld" not in msg["STATUS"]


async def test_a_busy_lock_that_finishes_passes_is_not_hung(
    plain: Gateway, notify_socket: NotifySocket
) -> None:
    clock = FakeMonotonic()
    wd = Watchdog(
        plain, SdNotifier(notify_socket.address), 30.0, stall_after_s=600, monotonic=clock
    )
    door = plain.locks["door"]
    async with door.handle.hold():
        wd.tick()
        clock.t = 500.0
        # A pass ended (its health was replaced) and the next one took the lock at once.
        door.health = dataclasses.replace(door.health, passes=door.health.passes + 1)
        wd.tick()
        clock.t = 1000.0
        wd.tick()
        assert pings(notify_socket.queued()) == ["1", "1", "1"]
        clock.t = 1100.0
        wd.tick()
        assert pings(notify_socket.queued()) == ["trigger"]


async def test_without_a_watchdog_only_ready_and_status_are_sent(
    plain: Gateway, notify_socket: NotifySocket
) -> None:
    clock = FakeMonotonic()
    wd = Watchdog(plain, SdNotifier(notify_socket.address), None, monotonic=clock)
    assert wd.period_s == 30.0
    wd.tick("READY=1")
    async with plain.locks["door"].handle.hold():
        for t in (0.0, 10_000.0):
            clock.t = t
            wd.tick()
    messages = notify_socket.queued()
    assert messages[0]["READY"] == "1"
    assert pings(messages) == []
