"""An idle lock is polled less and less often (idle CPU and bus time), a lock quiet for a while
rests (polled every few seconds), and any activity brings it back to full rate at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from lockgate_sim.serial_testing import MemoryKeyStore
from pydantic import ValidationError

from drivers.backoff import Backoff
from drivers.base import DriverContext
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.records import PollFlag, PollReply
from drivers.serial.options import SerialOptions
from drivers.serial.poller import IDLE_AFTER_POLLS, Poller
from tests.loop_ticks import due_timers


class ScriptedLock:
    """Answers polls with the replies it is given, then with "nothing to ask"."""

    def __init__(self) -> None:
        self.replies: list[PollReply] = []

    async def poll(self) -> PollReply:
        return self.replies.pop(0) if self.replies else PollReply(PollFlag(0), 0)


async def test_polling_slows_when_idle_and_is_back_at_full_rate_on_a_request() -> None:
    lock = ScriptedLock()

    async def client() -> LockClient:
        return cast(LockClient, lock)

    poller = Poller(
        "front",
        cast(DriverContext, cast(Any, None)),
        client,
        interval=0.15,
        policy=Backoff(0.05, 1.0),
        idle_interval=0.5,
        time=lambda: 100.0,  # on the idle grid: a whole idle_interval to the next instant
    )
    waits = [await poller._cycle() for _ in range(IDLE_AFTER_POLLS + 20)]
    assert waits[:IDLE_AFTER_POLLS] == [0.15] * IDLE_AFTER_POLLS
    slowing = waits[IDLE_AFTER_POLLS:]
    assert slowing == sorted(slowing) and slowing[0] > 0.15
    assert slowing[-1] == 0.5  # never slower than idle_poll_interval

    lock.replies.append(PollReply(PollFlag.MORE_REQUESTS, 0))  # the lock has requests queued
    assert await poller._cycle() == 0.0
    assert await poller._cycle() == 0.15  # full rate again


def test_idle_interval_is_never_faster_than_the_poll_interval() -> None:
    async def client() -> LockClient:
        raise AssertionError("not polled")

    poller = Poller(
        "front",
        cast(DriverContext, cast(Any, None)),
        client,
        interval=1.0,
        policy=Backoff(0.05, 1.0),
        idle_interval=0.2,
    )
    assert poller.idle_interval == 1.0


async def test_idle_locks_are_polled_at_the_same_instants() -> None:
    # Fully idle locks wait until the next multiple of idle_interval on the clock, whenever
    # their last poll ended, so they are polled in one burst (never waiting longer than
    # idle_interval); locks still slowing down keep their own pace.
    now = [0.0]

    async def client() -> LockClient:
        return cast(LockClient, ScriptedLock())

    def poller() -> Poller:
        return Poller(
            "front",
            cast(DriverContext, cast(Any, None)),
            client,
            interval=0.15,
            policy=Backoff(0.05, 1.0),
            idle_interval=0.5,
            time=lambda: now[0],
        )

    a, b = poller(), poller()
    for p in (a, b):
        for _ in range(IDLE_AFTER_POLLS + 20):
            await p._cycle()
    now[0] = 1000.12
    wait_a = await a._cycle()
    now[0] = 1000.31
    wait_b = await b._cycle()
    assert round(1000.12 + wait_a, 9) == round(1000.31 + wait_b, 9) == 1000.5
    assert 0 < wait_a <= 0.5 and 0 < wait_b <= 0.5
    fresh = poller()
    assert [await fresh._cycle() for _ in range(IDLE_AFTER_POLLS + 1)][-1] < 0.5  # slowing


def resting_poller(lock: ScriptedLock, now: list[float]) -> Poller:
    async def client() -> LockClient:
        return cast(LockClient, lock)

    ctx = DriverContext(now=lambda: datetime.now(UTC), keystore=MemoryKeyStore())
    return Poller(
        "front", ctx, client, interval=0.15, policy=Backoff(0.05, 1.0),
        idle_interval=0.5, rest_interval=2.0, rest_after=60.0, time=lambda: now[0],
    )


async def quiet_polls(poller: Poller, now: list[float], until: float) -> list[float]:
    """Poll a lock that has nothing to say, moving the fake clock by each wait, until ``until``."""
    waits = []
    while now[0] < until:
        waits.append(await poller._cycle())
        now[0] += waits[-1]
    return waits


async def test_a_lock_quiet_for_a_minute_rests_and_any_activity_brings_it_back() -> None:
    lock, now = ScriptedLock(), [1000.0]
    poller = resting_poller(lock, now)
    waits = await quiet_polls(poller, now, 1059.0)
    assert max(waits) == 0.5 and not poller.resting.is_set()  # idle, not resting yet
    waits = await quiet_polls(poller, now, 1100.0)
    assert poller.resting.is_set() and waits[-1] == 2.0
    assert round(now[0], 9) % 2.0 == 0  # resting locks are polled in one burst

    # A new audit-log entry (someone used a code the lock holds): full rate at once.
    lock.replies.append(PollReply(PollFlag(0), 7))
    assert await poller._cycle() == 0.15 and not poller.resting.is_set()
    await quiet_polls(poller, now, now[0] + 120.0)
    assert poller.resting.is_set()

    # The tamper switch opens: full rate.
    lock.replies.append(PollReply(PollFlag.TAMPER, 7))
    assert await poller._cycle() == 0.15
    await quiet_polls(poller, now, now[0] + 120.0)
    assert poller.resting.is_set()

    # The gateway writes to the lock (a new code, an unlock): full rate.
    poller.activity()
    assert not poller.resting.is_set()
    assert await poller._cycle() == 0.15
    await quiet_polls(poller, now, now[0] + 120.0)

    # An access request at a resting lock is answered, and the pace is full again.
    lock.replies.append(PollReply(PollFlag.MORE_REQUESTS, 7))
    assert await poller._cycle() == 0.0
    assert await poller._cycle() == 0.15 and not poller.resting.is_set()


def test_the_resting_pace_is_never_faster_than_the_idle_one_and_stays_under_the_lock_timeout(
) -> None:
    async def client() -> LockClient:
        raise AssertionError("not polled")

    ctx = cast(DriverContext, cast(Any, None))
    slow = Poller("front", ctx, client, interval=0.15, policy=Backoff(0.05, 1.0),
                  idle_interval=3.0, rest_interval=2.0)
    assert slow.rest_interval == 3.0
    with pytest.raises(ValidationError, match="rest_poll_interval"):
        SerialOptions(port="/dev/ttyUSB0", address=3, rest_poll_interval=5)
    assert SerialOptions(port="/dev/ttyUSB0", address=3).rest_poll_interval == 2.0


async def test_the_wait_between_polls_ends_at_its_delay_or_at_once_on_activity() -> None:
    async def client() -> LockClient:
        raise AssertionError("not polled")

    poller = Poller("front", cast(DriverContext, cast(Any, None)), client, interval=0.15,
                    policy=Backoff(0.05, 1.0))
    async with asyncio.timeout(10):  # the test's own bound
        due = due_timers()
        await poller._sleep(0.01)  # quiet: ends by itself
        assert due_timers() == due

        waiting = asyncio.create_task(poller._sleep(3600))
        await asyncio.sleep(0)
        assert due_timers() == due + 1
        poller.activity()  # the gateway wrote to the lock: poll now
        await waiting
        assert due_timers() == due

        poller.activity()  # while it polls: the next wait is skipped, the one after is not
        await poller._sleep(3600)
        waiting = asyncio.create_task(poller._sleep(3600))
        await asyncio.sleep(0)
        assert not waiting.done()
        poller.wake()
        await waiting

        waiting = asyncio.create_task(poller._sleep(3600))
        await asyncio.sleep(0)
        waiting.cancel()  # stop() while it waits
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert due_timers() == due and poller._waiter is None
