"""What one bus address received, waiting for its driver: :class:`Mailbox` and the receive
deadline of :class:`BusCarrier` (each wait is one future and one timer at the deadline)."""

from __future__ import annotations

import asyncio

import pytest

from drivers.errors import LockOfflineError
from drivers.serial.bus import QUEUE_DEPTH, BusStats, Mailbox, SerialBus, _expire
from drivers.serial.carrier import BusCarrier
from tests.loop_ticks import due_timers


async def test_a_datagram_that_comes_while_waiting_is_taken_and_its_timer_cancelled() -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    due = due_timers()
    getter = asyncio.create_task(mailbox.get(loop.time() + 30))
    await asyncio.sleep(0)  # the getter waits now
    assert due_timers() == due + 1
    mailbox.put(b"reply")
    assert await getter == b"reply"
    assert due_timers() == due and len(mailbox) == 0


async def test_a_silent_lock_ends_the_wait_at_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    async with asyncio.timeout(10):  # the test's own bound, far above the deadline
        due = due_timers()
        with pytest.raises(TimeoutError):
            await mailbox.get(loop.time() + 0.01)
        assert due_timers() == due
    with pytest.raises(TimeoutError):  # a deadline already gone: at once, nothing waits
        await mailbox.get(loop.time() - 1)


async def test_what_came_is_taken_even_at_a_passed_deadline_and_in_order() -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    mailbox.put(b"first")
    mailbox.put(b"second")
    assert await mailbox.get(loop.time() - 1) == b"first"
    assert await mailbox.get(loop.time() - 1) == b"second"


async def test_nothing_is_lost_when_a_wait_ends_by_timeout_or_cancellation() -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    # Two datagrams arrive while the getter is woken but has not run yet, and it is cancelled
    # then: both stay for the next wait.
    getter = asyncio.create_task(mailbox.get(loop.time() + 30))
    await asyncio.sleep(0)
    mailbox.put(b"a")
    mailbox.put(b"b")
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert len(mailbox) == 2
    assert await mailbox.get(loop.time() + 30) == b"a"
    assert await mailbox.get(loop.time() + 30) == b"b"


async def test_a_full_mailbox_drops_its_oldest_and_counts_it() -> None:
    loop = asyncio.get_running_loop()
    stats = BusStats()
    mailbox = Mailbox(stats)
    for i in range(QUEUE_DEPTH + 2):
        mailbox.put(bytes((i,)))
    assert stats.overflows == 2 and len(mailbox) == QUEUE_DEPTH
    assert await mailbox.get(loop.time()) == bytes((2,))
    mailbox.clear()
    assert len(mailbox) == 0


async def test_the_carrier_times_out_on_silence_and_reports_a_lost_port() -> None:
    bus = SerialBus("/dev/null-test", 115200)
    carrier = BusCarrier(bus, 5)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(TimeoutError):
                await carrier.receive(0.01)
        mailbox = bus._mailboxes[5]
        mailbox.put(b"late")
        mailbox.put(bus.generation)  # the port was lost after our last send
        assert await carrier.receive(30) == b"late"
        with pytest.raises(LockOfflineError):
            await carrier.receive(30)
    finally:
        carrier.close()


async def test_one_reader_at_a_time() -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    first = asyncio.create_task(mailbox.get(loop.time() + 30))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await mailbox.get(loop.time() + 30)
    mailbox.put(b"reply")
    assert await first == b"reply"


async def test_a_datagram_there_when_the_deadline_wakes_the_reader_is_taken() -> None:
    # The deadline's timer and the datagram in the same pass of the loop: what came is read,
    # and a reader cancelled right then leaves no future with an unread exception behind.
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(BusStats())
    getter = asyncio.create_task(mailbox.get(loop.time() + 30))
    await asyncio.sleep(0)
    waiter = mailbox._waiter
    assert waiter is not None
    _expire(waiter)
    mailbox.put(b"just in time")
    assert await getter == b"just in time"

    getter = asyncio.create_task(mailbox.get(loop.time() + 30))
    await asyncio.sleep(0)
    waiter = mailbox._waiter
    assert waiter is not None
    _expire(waiter)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert waiter.done() and not waiter.cancelled() and waiter.exception() is None
