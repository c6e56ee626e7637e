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
