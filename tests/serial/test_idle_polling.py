"""An idle lock is polled less and less often (idle CPU and bus time), and at full rate again
as soon as it asks for something."""

from __future__ import annotations

from typing import Any, cast

from drivers.backoff import Backoff
from drivers.base import DriverContext
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.records import PollFlag, PollReply
from drivers.serial.poller import IDLE_AFTER_POLLS, Poller


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
