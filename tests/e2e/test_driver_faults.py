"""One lock's driver misbehaves (raises what no driver should, or never answers): the other
locks still get their codes within 2 s of the sync, decisions still answer, the faulty lock is
reported with its error and logged once at ERROR with its traceback, and the gateway lives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest
from lockgate_sim.driver import SimDriver, SimOptions
from lockgate_sim.lock import SimLock

from drivers.base import BatchResult, Credential, CredentialKind
from drivers.registry import DriverRegistry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.daemon import Gateway
from gateway.mqtt.state import StateView
from gateway.mqtt.topics import Topics
from gateway.sync import SyncReport
from tests.e2e.site import WAIT, site_config, write_secret

PIN = "482913"
OP_TIMEOUT_S = 3.0
"""Long enough that the hung call is still hanging while the other locks are served."""


def sim_of(gw: Gateway, lock_id: str) -> SimLock:
    driver = gw.locks[lock_id].handle.driver
    assert isinstance(driver, SimDriver)
    return driver.sim


class FaultyOptions(SimOptions):
    type: Literal["faulty"] = "faulty"  # type: ignore[assignment]
    fault: Literal["raise", "hang"] = "raise"


class FaultyDriver(SimDriver):
    """A simulated lock whose driver has a bug in ``put_credentials``."""

    type_name = "faulty"
    options_model = FaultyOptions
    puts = 0

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        type(self).puts += 1
        assert isinstance(self.options, FaultyOptions)
        if self.options.fault == "hang":
            await asyncio.Event().wait()  # an answer that never comes
        raise KeyError(batch[0].credential_id)  # what no driver should raise


@pytest.mark.parametrize("fault", ["raise", "hang"])
async def test_a_faulty_driver_takes_nothing_else_down(
    tmp_path: Path, clock: FakeClock, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    FaultyDriver.puts = 0
    registry = DriverRegistry([SimDriver, FaultyDriver])
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Building A")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
        cfg = site_config(
            tmp_path,
            cloud.url,
            write_secret(tmp_path / "api-key", cloud.api_key),
            [
                {"id": "front", "space_ids": [space], "driver": {"type": "sim"}},
                {
                    "id": "broken",
                    "space_ids": [space],
                    "driver": {"type": "faulty", "fault": fault},
                },
                {"id": "back", "space_ids": [space], "driver": {"type": "sim"}},
            ],
            registry,
        )
        cfg = cfg.model_copy(
            update={"reconcile": cfg.reconcile.model_copy(update={"op_timeout_s": OP_TIMEOUT_S})}
        )
        caplog.set_level(logging.DEBUG, logger="gateway.reconciler")
        gateway = Gateway(cfg, registry, clock=clock, kernel_synchronised=lambda: True)
        async with gateway as gw, gw.serving():
            sims = {i: sim_of(gw, i) for i in ("front", "back")}
            grant = cloud.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": PIN}],
            )
            (method_id,) = grant["access_method_ids"]
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()
            # Within 2 s of the sync, however the broken lock's pass ends.
            async with asyncio.timeout(WAIT):
                for lock_id in ("front", "back"):

                    def put(lid: str = lock_id) -> bool:
                        return method_id in {c.credential_id for c in sims[lid].list_credentials()}

                    await gw.locks[lock_id].wait_for(put)
            assert await sims["front"].enter_code(PIN)
            broken = gw.locks["broken"]
            if fault == "hang":  # still hanging: decisions answer meanwhile
                assert broken.handle.busy
                d = gw.decide(CredentialKind.CODE, PIN.encode(), "broken", dry_run=True)
                assert d.allow, d.reason

            code = "driver_fault" if fault == "raise" else "timeout"
            async with asyncio.timeout(OP_TIMEOUT_S + WAIT):
                await broken.wait_for(lambda: broken.health.last_error_code == code)
            assert not broken.handle.busy  # the hung call was abandoned, the lock is free

            # Decisions answer, for the broken lock too (the gateway decides for it).
            for lock_id in ("front", "broken"):
                d = gw.decide(CredentialKind.CODE, PIN.encode(), lock_id, dry_run=True)
                assert d.allow, (lock_id, d.reason)

            # Reported where an operator looks (the MQTT lock state document).
            view = StateView(gw, Topics("lockgate", "site-test", "homeassistant"))
            state = view.lock_state("broken", broken)
            assert state["last_error_code"] == code
            assert state["last_error"]
            assert PIN not in str(state)

            # The broken lock retries after the longest delay; the repeat is not logged again.
            clock.advance(cfg.reconcile.retry_max_s)
            async with asyncio.timeout(OP_TIMEOUT_S + WAIT):
                await broken.wait_for(lambda: FaultyDriver.puts >= 2)  # the retry ended
            errors = [
                r
                for r in caplog.records
                if r.levelno == logging.ERROR and r.name == "gateway.reconciler"
            ]
            if fault == "raise":
                (record,) = errors
                assert "broken" in record.getMessage()
                assert record.exc_info is not None and record.exc_info[0] is KeyError
            else:  # a lock that does not answer is a lock problem, not a driver bug
                assert errors == []
                warnings = [r for r in caplog.records if "broken" in r.getMessage()]
                assert any(r.levelno == logging.WARNING for r in warnings)

            # The gateway lives: the sync loop still runs and the good locks follow it.
            cloud.state.grants.delete(grant["access_grant_id"])
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()
                for lock_id in ("front", "back"):

                    def cleared(lid: str = lock_id) -> bool:
                        return not sims[lid].list_credentials()

                    await gw.locks[lock_id].wait_for(cleared)
            assert gw.ready.is_set()  # serve() is still running every task


async def test_a_bug_in_the_cloud_sync_is_contained(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The sync raises what it never should, once: whoever asked for the sync hears of it, it
    is logged at ERROR with its traceback, the locks and decisions go on, and the sync loop
    comes back by itself."""
    registry = DriverRegistry([SimDriver])
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Building A")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
        cfg = site_config(
            tmp_path,
            cloud.url,
            write_secret(tmp_path / "api-key", cloud.api_key),
            [{"id": "front", "space_ids": [space], "driver": {"type": "sim"}}],
            registry,
        )
        gateway = Gateway(cfg, registry, clock=clock, kernel_synchronised=lambda: True)
        async with gateway as gw, gw.serving():
            sync = gw.cloud_sync
            real_full = sync.full
            bugs = 0

            async def buggy_full() -> SyncReport:
                nonlocal bugs
                if bugs == 0:
                    bugs += 1
                    raise ZeroDivisionError("a bug in the sync")
                return await real_full()

            sync.full = buggy_full  # type: ignore[method-assign]
            cloud.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": PIN}],
            )
            with pytest.raises(ZeroDivisionError):
                async with asyncio.timeout(WAIT):
                    await gw.sync_loop.sync_now(full=True)
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert any("cloud-sync" in r.getMessage() and r.exc_info for r in errors)
            assert gw.decide(CredentialKind.CODE, PIN.encode(), "front", dry_run=True) is not None

            # Restarted by its supervisor (after a second or so): the next sync works.
            async with asyncio.timeout(3 * WAIT):
                report = await gw.sync_loop.sync_now(full=True)
            assert report.grants == 1
            sim = sim_of(gw, "front")
            async with asyncio.timeout(WAIT):
                await gw.locks["front"].wait_for(lambda: len(sim.list_credentials()) == 1)
