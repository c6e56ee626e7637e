"""A driver's security alert (a rogue device advertising as a lock: tests/ble/
test_rogue_device.py) becomes an event the operator sees: on the outbox, so on MQTT
``<root>/events`` and never lost, with what was seen and no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.base import SecurityAlert
from gateway.clock import FakeClock
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
        alerts = [e for e in site.outbox() if e["kind"] == "security_alert"]
        assert len(alerts) == 1
        assert alerts[0]["lock_id"] == "front"
        assert alerts[0]["reason"] == "rogue_device"
        assert "0011aabbccddeeff" in alerts[0]["detail"]
        assert alerts[0]["source"] == "gateway"
        assert any("security alert rogue_device" in r.getMessage() for r in caplog.records)
