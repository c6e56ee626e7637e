"""Regression tests: the status characteristic is read after subscribing, and a failed
access-request poll is retried whatever the wall clock does."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from drivers.backoff import Backoff
from drivers.ble.carrier import GattCarrier
from drivers.ble.connection import LockConnection
from drivers.ble.link import LinkStats, _set_up
from drivers.ble.options import BleOptions
from drivers.ble.profile import (
    COMMAND_UUID,
    DEVICE_INFO_UUID,
    RESPONSE_UUID,
    SERVICE_UUID,
    STATUS_UUID,
    AdvertFlag,
    DeviceInfoRecord,
)
from drivers.errors import LockBusyError
from gateway.clock import FakeClock, FlowingClock


class _Client:
    """Just enough of a BleakClient: the lock raised ACCESS_REQUEST before we subscribed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        chars = [
            SimpleNamespace(uuid=u)
            for u in (COMMAND_UUID, RESPONSE_UUID, DEVICE_INFO_UUID, STATUS_UUID)
        ]
        self.services = SimpleNamespace(
            get_service=lambda u: (
                SimpleNamespace(characteristics=chars) if u == SERVICE_UUID else None
            )
        )
        self.is_connected = True

    async def read_gatt_char(self, char: Any) -> bytes:
        self.calls.append(f"read {char.uuid}")
        if char.uuid == DEVICE_INFO_UUID:
            return DeviceInfoRecord(b"\x01" * 8, 4096, 20, AdvertFlag.COMMISSIONED).encode()
        return bytes((AdvertFlag.COMMISSIONED | AdvertFlag.ACCESS_REQUEST,))

    async def start_notify(self, char: Any, callback: Any) -> None:
        self.calls.append(f"notify {char.uuid}")


async def test_a_flag_raised_before_the_status_subscription_is_read_after_it() -> None:
    client = _Client()
    seen: list[AdvertFlag] = []
    await _set_up(client, "x", "C0:00:00:00:00:09", None, lambda _s: None, seen.append, LinkStats())  # type: ignore[arg-type]
    assert client.calls.index(f"notify {STATUS_UUID}") < client.calls.index(f"read {STATUS_UUID}")
    assert seen == [AdvertFlag.COMMISSIONED | AdvertFlag.ACCESS_REQUEST]


async def test_a_failed_access_poll_is_retried_after_a_backward_clock_step() -> None:
    fake = FakeClock()
    polls: list[int] = []
    polled = asyncio.Event()

    async def attention() -> None:
        polls.append(1)
        polled.set()
        if len(polls) == 1:
            raise LockBusyError("busy", lock_id="x")

    async def nothing() -> None: ...

    opts = BleOptions(device_id="00" * 8, reconnect_min=0.05, reconnect_max=0.1)
    conn = LockConnection(
        "x",
        opts,
        GattCarrier("x", max_datagram=4096, write_mode="last", segment_time=0.01),
        clock=FlowingClock(fake),
        policy=Backoff(0.05, 0.1),
        keepalive=nothing,
        attention=attention,
        on_advert=lambda _s: None,
        on_status=lambda _f: None,
    )
    adapter = SimpleNamespace(
        scanner=SimpleNamespace(subscribe=lambda _m, _c: lambda: None),
        slots=SimpleNamespace(contended=False, release=lambda _h: None),
    )
    conn.start(adapter)  # type: ignore[arg-type]
    try:
        conn.attention()
        async with asyncio.timeout(2):
            await polled.wait()  # the first poll, which fails: a hold-off starts
        polled.clear()
        fake.set(fake.now().replace(year=fake.now().year - 1))  # NTP steps the clock back
        conn.attention()  # the lock's adverts keep asking
        async with asyncio.timeout(2):
            await polled.wait()  # retried after the hold-off, whatever the wall clock did
    finally:
        await conn.close()
