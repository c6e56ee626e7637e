"""A driver's security alert (a rogue device advertising as a lock: tests/ble/
test_rogue_device.py) becomes an event the operator sees: on the outbox, so on MQTT
``<root>/events`` and never lost, with what was seen and no secret."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.base import SecurityAlert
from gateway.clock import FakeClock
from tests.core.conftest import snapshot
from tests.core.factories import grant
from tests.core.test_bulk_write import HeldMove, committed
from tests.e2e.site import running_site


async def test_a_rogue_device_alert_is_an_event_the_operator_sees(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_site(tmp_path, clock) as site:
        driver = site.gateway.locks["front"].handle.driver
        driver.ctx.alert(
            SecurityAlert(
                "front", "rogue_device", "advertises as the lock but is device 0011aabbccddeeff",
                "C0:00:00:00:00:07",
            )
        )
        await asyncio.wait_for(site.gateway.alerts_recorded(), 30)
        alerts = [e for e in site.outbox() if e["kind"] == "security_alert"]
        assert len(alerts) == 1
        assert alerts[0]["lock_id"] == "front"
        assert alerts[0]["reason"] == "rogue_device"
        assert "0011aabbccddeeff" in alerts[0]["detail"]
        assert alerts[0]["source"] == "gateway"
        assert any("security alert rogue_device" in r.getMessage() for r in caplog.records)


async def test_an_alert_during_a_first_sync_waits_in_its_task_not_on_the_loop(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A rogue device seen while a first full sync moves its snapshot in (the database's
    write lock held on another connection): the driver's callback returns at once, the
    loop goes on, and the alert's event commits once the snapshot has."""
    async with running_site(tmp_path, clock) as site:
        store = site.gateway.store
        store.db.conn.execute("PRAGMA busy_timeout=0")  # a write that waited would fail
        held = HeldMove(store.db)
        first = snapshot([grant(f"g{i}", start=clock.now()) for i in range(20)], [])
        sync = await held.running(store.cloud.apply_snapshot_sliced(first, clock.now()))
        driver = site.gateway.locks["front"].handle.driver
        driver.ctx.alert(SecurityAlert("front", "rogue_device", "device 0011aabbccddeeff"))
        recorded = asyncio.create_task(site.gateway.alerts_recorded())
        await asyncio.sleep(0)
        assert store.db.writers_waiting == 1 and not recorded.done()
        assert not [e for e in site.outbox() if e["kind"] == "security_alert"]
        held.release.set()
        async with asyncio.timeout(30):
            await sync
            await recorded
        rows = committed(store.db.path, "SELECT payload FROM outbox")
        assert sum('"security_alert"' in r[0] for r in rows) == 1
