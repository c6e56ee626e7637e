"""The serial driver over real pyserial and a real pty, against simulated locks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from lockgate_sim.serial_bus import SerialSite
from lockgate_sim.serial_testing import MemoryKeyStore
from pydantic import ValidationError

from drivers.base import (
    AccessAnswer,
    AccessRequest,
    BoltState,
    Credential,
    CredentialKind,
    EventKind,
    TimeWindow,
)
from drivers.errors import DriverConfigError, LockAuthError
from drivers.registry import default_registry
from drivers.serial.bus import PortState
from drivers.serial.driver import SerialDriver
from drivers.serial.options import SerialOptions

JAN = datetime(2026, 1, 1, tzinfo=UTC)
MakeDriver = Callable[..., Awaitable[SerialDriver]]


def code(i: int, window: TimeWindow | None = None) -> Credential:
    return Credential(f"code-{i}", CredentialKind.CODE, f"{200000 + i}".encode(),
                      i.to_bytes(8, "big"), window)


async def test_commission_and_every_operation(
    site: SerialSite, make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    with pytest.raises(LockAuthError, match="not commissioned"):
        await driver.status()
    await driver.commission(site.pairing_secret("lock-1"))
    assert driver.connected
    lock = site.locks["lock-1"]

    caps = await driver.capabilities()
    assert (caps.slots, caps.max_batch) == (200, 50)
    assert caps.kinds == {CredentialKind.CODE, CredentialKind.CARD}
    assert caps.has_card_reader and caps.online_validation and not caps.enforces_time_windows

    window = TimeWindow(JAN, JAN + timedelta(days=31))
    batch = [code(i) for i in range(40)] + [
        code(99, window),
        Credential("card-1", CredentialKind.CARD, b"0004242", b"cardtag1"),
    ]
    assert (await driver.put_credentials(batch)).ok
    listed = {c.credential_id: c for c in await driver.list_credentials()}
    assert set(listed) == {c.credential_id for c in batch}
    assert listed["code-99"].window == window
    assert listed["card-1"].kind is CredentialKind.CARD and listed["card-1"].tag == b"cardtag1"
    assert (await driver.delete_credentials(["code-1", "code-2", "not-there"])).ok
    assert len(await driver.list_credentials()) == 40

    await driver.unlock(3)
    status = await driver.status()
    assert status.bolt is BoltState.UNLOCKED and status.battery_percent == 87
    assert status.firmware == "lockgate-sim 1.0"
    await driver.lock()
    assert (await driver.status()).bolt is BoltState.LOCKED

    await driver.set_time(JAN)
    assert abs((lock.now() - JAN).total_seconds()) < 5
    assert abs(((await driver.status()).lock_time or JAN) - JAN) < timedelta(seconds=5)

    page = await driver.fetch_events(0, limit=10)
    assert [e.kind for e in page.events] == [EventKind.UNLOCKED, EventKind.LOCKED]
    await driver.ack_events(page.next_seq)
    assert lock.log == []
    assert (await driver.fetch_events(page.next_seq)).events == []

    await driver.disconnect()
    assert not driver.connected
    await driver.connect()
    assert driver.connected


async def test_commissioning_again_and_other_gateways(
    site: SerialSite, make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    with pytest.raises(LockAuthError, match="pairing secret"):
        await driver.commission("not base32 at all!")
    with pytest.raises(LockAuthError, match="pairing_failed"):
        await driver.commission("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AA")
    secret = site.pairing_secret("lock-1")
    await driver.commission(secret.lower().replace("-", " "))
    await driver.commission(secret)  # the same gateway again: nothing to do
    with pytest.raises(DriverConfigError, match="already in use"):
        await (await make_driver("lock-1")).connect()  # one driver per bus address
    await driver.close()
    intruder = await make_driver("lock-1", keys=MemoryKeyStore())  # another gateway's keys
    with pytest.raises(LockAuthError, match="not in pairing mode"):
        await intruder.commission(secret)
    with pytest.raises(LockAuthError, match="not commissioned"):
        await intruder.lock()
    await intruder.close()
    assert site.engines["lock-1"].store.commissioned
    await (await make_driver("lock-1")).lock()


async def test_two_locks_share_one_bus(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    one = await make_driver("lock-1", start=True)
    two = await make_driver("lock-2", start=True)
    assert one.bus is two.bus and one.bus is not None
    results = await asyncio.gather(
        one.put_credentials([code(i) for i in range(60)][:50]),
        two.put_credentials([code(i) for i in range(100, 150)]),
        one.unlock(None),
        two.status(),
    )
    assert results[0].ok and results[1].ok
    assert len(site.locks["lock-1"].list_credentials()) == 50
    assert {c.credential_id for c in site.locks["lock-2"].list_credentials()} == {
        f"code-{i}" for i in range(100, 150)
    }
    assert site.bus.stats.unaddressed == 0


async def test_access_request_is_decided_by_the_gateway(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    asked: list[AccessRequest] = []
    new_events = asyncio.Event()

    async def decide(request: AccessRequest) -> AccessAnswer:
        asked.append(request)
        ok = request.secret == b"4321"
        return AccessAnswer(ok, "valid" if ok else "unknown_credential",
                            "cloud-7" if ok else None)

    await make_driver("lock-1", start=True, decide=decide, events_waiting=new_events.set,
                      poll_interval=0.02)
    lock = site.locks["lock-1"]
    assert await asyncio.wait_for(lock.enter_code("4321"), 2) is True
    assert await asyncio.wait_for(lock.enter_code("0000"), 2) is False
    assert [(r.kind, r.secret, r.lock_id) for r in asked] == [
        (CredentialKind.CODE, b"4321", "lock-1"), (CredentialKind.CODE, b"0000", "lock-1")]
    allowed = [e for e in lock.log if e.kind is EventKind.ACCESS_ALLOWED]
    assert [(e.decided_by, e.credential_id) for e in allowed] == [("gateway", "cloud-7")]
    await asyncio.wait_for(new_events.wait(), 2)


async def test_the_poller_reconnects_after_the_lock_rebooted(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    new_events = asyncio.Event()
    driver = await make_driver("lock-1", start=True, poll_interval=0.02,
                               events_waiting=new_events.set)
    await driver.connect()
    site.locks["lock-1"].reboot()  # logs a "rebooted" entry and forgets the session
    await asyncio.wait_for(new_events.wait(), 3)
    assert driver.session is not None and driver.session.stats.handshakes >= 2
    page = await driver.fetch_events(0)
    assert page.events[-1].kind is EventKind.REBOOTED


async def test_a_write_larger_than_the_kernel_buffer_through_the_bus(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    await driver.connect()
    bus = driver.bus
    assert bus is not None and bus.protocol is not None
    noise = bytes(range(1, 256)) * 400  # 100 KiB without a delimiter
    async with bus.exchange_lock:
        await asyncio.wait_for(bus.protocol.write(noise), 5)
    await driver.lock()  # the lock's receiver threw the noise away and stays in step
    assert site.bus.deframer.stats.refused.get("oversize") == 1
    assert bus.state is PortState.OPEN


def test_the_registry_knows_the_serial_driver() -> None:
    registry = default_registry()
    assert registry.get("serial") is SerialDriver
    assert SerialOptions(port="/dev/ttyUSB0", address=3).poll_interval == 0.15
    with pytest.raises(ValidationError):
        SerialOptions(port="/dev/ttyUSB0", address=0)
    with pytest.raises(ValidationError):
        SerialOptions(port="/dev/ttyUSB0", address=3, baud="fast")


async def test_a_resting_lock_is_still_served_and_wakes_to_full_rate(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    # Short intervals so the lock rests within the test; the behaviour is the default's.
    new_events = asyncio.Event()

    async def decide(request: AccessRequest) -> AccessAnswer:
        return AccessAnswer(request.secret == b"4321", "valid", "cloud-7")

    driver = await make_driver("lock-1", start=True, decide=decide, events_waiting=new_events.set,
                               poll_interval=0.01, idle_poll_interval=0.02,
                               rest_poll_interval=0.1, rest_after=0.3)
    assert (await driver.put_credentials([code(1)])).ok  # a code the lock decides itself
    lock = site.locks["lock-1"]
    await asyncio.wait_for(driver.poller.resting.wait(), 5)
    new_events.clear()
    assert await asyncio.wait_for(lock.enter_code("200001"), 3) is True  # the lock's own code
    await asyncio.wait_for(new_events.wait(), 3)  # its log entry is noticed at the next poll
    assert not driver.poller.resting.is_set()
    await asyncio.wait_for(driver.poller.resting.wait(), 5)
    assert await asyncio.wait_for(lock.enter_code("4321"), 3) is True  # asked of the gateway
    assert not driver.poller.resting.is_set()
    await asyncio.wait_for(driver.poller.resting.wait(), 5)
    await driver.unlock(1)  # a write by the gateway: full rate again
    assert not driver.poller.resting.is_set()
    assert [e.decided_by for e in lock.log if e.kind is EventKind.ACCESS_ALLOWED] == [
        "lock", "gateway"]
