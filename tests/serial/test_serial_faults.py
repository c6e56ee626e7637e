"""Faults on the line and in the lock: the driver recovers, and the lock ends up right."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from lockgate_sim.serial_bus import SerialSite

from drivers.base import Credential, CredentialKind, LockDriver
from drivers.errors import LockOfflineError, LockTimeoutError
from drivers.serial.bus import PortState
from drivers.serial.driver import SerialDriver
from drivers.serial.options import SerialOptions

MakeDriver = Callable[..., Awaitable[SerialDriver]]


def code(i: int, version: int = 0) -> Credential:
    return Credential(f"grant-{i:04d}", CredentialKind.CODE, f"{300000 + i}".encode(),
                      bytes((version,)) + i.to_bytes(7, "big"))


async def reconcile(driver: LockDriver, desired: list[Credential]) -> None:
    """What the gateway's reconciler does: list, delete what is extra, put what differs."""
    caps = await driver.capabilities()
    held = {c.credential_id: c.tag for c in await driver.list_credentials()}
    want = {c.credential_id: c for c in desired}
    extra = [cid for cid in held if cid not in want]
    if extra:
        assert (await driver.delete_credentials(extra)).ok
    missing = [c for c in desired if held.get(c.credential_id) != c.tag]
    for i in range(0, len(missing), caps.max_batch):
        result = await driver.put_credentials(missing[i : i + caps.max_batch])
        assert result.ok, result.failures


async def test_lock_reboots_in_the_middle_of_a_200_code_batch(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    lock = site.locks["lock-1"]
    driver = await make_driver("lock-1", start=True)
    # the lock holds some codes from before: three stay, two must go, one changed
    await reconcile(driver, [code(i) for i in range(3)] + [code(900), code(901), code(5)])
    desired = [code(i, version=1 if i == 5 else 0) for i in range(200)]
    lock.faults.reboot_after_puts = 90  # powers down while writing the 91st slot
    boots = lock.boots

    await reconcile(driver, desired)  # retransmits, handshakes again, carries on
    await reconcile(driver, desired)  # a second pass finds nothing to do

    assert lock.boots == boots + 1
    stored = {c.credential_id: c.tag for c in lock.list_credentials()}
    assert stored == {c.credential_id: c.tag for c in desired}
    assert {c.credential_id: c.tag for c in await driver.list_credentials()} == stored
    session = driver.session
    assert session is not None and session.stats.handshakes >= 2
    assert site.engines["lock-1"].stats.reboots == 1
    rewritten = [key for key, n in lock.put_counts.items() if n > 1]
    assert len(rewritten) <= 50  # at most the frame in flight is written twice


async def test_dropped_corrupted_and_noisy_replies(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    await driver.connect()
    faults = site.bus.faults
    faults.drop_replies, faults.corrupt_replies, faults.garbage_replies = 1, 1, 3
    assert (await driver.put_credentials([code(i) for i in range(30)])).ok
    await driver.unlock(None)
    await driver.lock()
    session, bus = driver.session, driver.bus
    assert session is not None and bus is not None and bus.protocol is not None
    assert session.stats.retransmissions == 2  # the dropped and the corrupted reply
    refused = bus.protocol.deframer.stats.refused
    assert refused.get("bad_crc", 0) >= 1
    assert sum(refused.values()) >= 4  # the corrupted reply and three bursts of noise
    assert site.engines["lock-1"].stats.duplicates == 2  # answered from the reply cache
    assert len(site.locks["lock-1"].list_credentials()) == 30


async def test_a_late_reply_is_ignored_and_the_answer_is_right(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1", reply_timeout=0.05)
    await driver.connect()
    site.bus.faults.delay_replies = 0.25  # every reply comes after the gateway retransmitted
    status = await driver.status()
    site.bus.faults.delay_replies = 0.0
    assert status.battery_percent == 87
    assert (await driver.status()).battery_percent == 87
    session = driver.session
    assert session is not None and session.stats.retransmissions >= 1
    assert session.stats.stale_replies >= 1


async def test_a_slow_lock_is_waited_for(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    await driver.connect()
    site.locks["lock-1"].faults.slow_seconds = 0.3  # slower than the 40 ms it announces
    await driver.lock()
    await driver.unlock(None)
    site.locks["lock-1"].faults.slow_seconds = 0.0
    session = driver.session
    assert session is not None and session.stats.retransmissions >= 1
    unlocks = [e for e in site.locks["lock-1"].log if e.reason == "command"]
    assert len(unlocks) == 2  # each command ran once despite the retransmissions


async def test_a_lock_that_does_not_answer_times_out_then_comes_back(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-2", attempts=2)
    await driver.connect()
    site.locks["lock-2"].faults.offline = True
    with pytest.raises(LockTimeoutError):
        await driver.status()
    assert not driver.connected
    with pytest.raises(LockTimeoutError):  # no session: the LOCK itself was never sent
        await driver.lock()
    site.locks["lock-2"].faults.offline = False
    await driver.lock()
    assert driver.connected


async def test_unplugged_adapter_is_reopened(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1", start=True)
    await driver.connect()
    bus = driver.bus
    assert bus is not None
    await site.bus.unplug()
    async with asyncio.timeout(3):
        await bus.wait_state(PortState.DOWN)
    with pytest.raises(LockOfflineError):
        await driver.status()
    await site.bus.plug()  # a new /dev/pts/N behind the same link path
    async with asyncio.timeout(3):
        await bus.wait_state(PortState.OPEN)
    assert (await driver.status()).battery_percent == 87
    assert bus.stats.losses == 1 and bus.stats.opens == 2
    session = driver.session
    assert session is not None and session.stats.handshakes >= 2
