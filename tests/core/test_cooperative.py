"""A sliced task gives the loop back so that what a socket or a timer wakes runs before its next
slice (not after two or three more of them)."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable

from gateway.cooperative import Slicer


async def _sliced(
    slices: list[int],
    started: asyncio.Event,
    stop: asyncio.Event,
    during: Callable[[], None] = lambda: None,
) -> None:
    """Work in slices: each tick yields (budget 0), each slice counted; ``during`` is called
    in the third slice (what becomes due while a slice runs)."""
    slicer = Slicer(budget_s=0.0)
    while not stop.is_set():
        slices.append(len(slices))
        if len(slices) == 3:
            during()
        started.set()
        await slicer.tick()


async def test_a_task_woken_by_a_socket_runs_before_the_next_slice() -> None:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    slices: list[int] = []
    started, stop = asyncio.Event(), asyncio.Event()
    seen: list[int] = []

    async def reader() -> None:
        await loop.sock_recv(b, 1)
        seen.append(len(slices))  # how many slices had run when this task got the loop

    try:
        read = asyncio.create_task(reader())
        work = asyncio.create_task(_sliced(slices, started, stop))
        async with asyncio.timeout(10):
            await started.wait()
            for _ in range(5):  # let the reader be parked on the socket, the work going
                await asyncio.sleep(0)
            a.send(b"x")
            sent_at = len(slices)
            await read
        stop.set()
        await work
    finally:
        a.close()
        b.close()
    # Sent between two slices: at most the slice already queued ran before the reader.
    assert seen[0] - sent_at <= 1, (sent_at, seen)


async def test_a_task_woken_by_a_timer_runs_before_the_next_slice() -> None:
    loop = asyncio.get_running_loop()
    slices: list[int] = []
    started, stop = asyncio.Event(), asyncio.Event()
    seen: list[int] = []
    due: asyncio.Future[None] = loop.create_future()

    async def waiter() -> None:
        await due
        seen.append(len(slices))

    armed_at: list[int] = []

    def arm() -> None:  # a timer that is due by the end of this slice
        armed_at.append(len(slices))
        loop.call_at(loop.time(), due.set_result, None)

    wait = asyncio.create_task(waiter())
    work = asyncio.create_task(_sliced(slices, started, stop, arm))
    async with asyncio.timeout(10):
        await wait
    stop.set()
    await work
    # Armed in a slice: at most one more slice ran before the waiter.
    assert seen[0] - armed_at[0] <= 1, (armed_at, seen)


async def test_sliced_work_settles_what_it_keeps_as_it_goes() -> None:
    """Long-lived data built in slices is moved out of the collector's way as it grows, so no
    full collection ever walks all of it at once."""
    gc.collect()
    gc.freeze()  # the test process's own objects: not what is measured
    try:
        frozen = gc.get_freeze_count()
        slicer = Slicer(budget_s=0.0)
        kept: list[list[int]] = []
        for i in range(100_000):
            kept.append([i])  # a container the collector tracks
            await slicer.tick()
        unfrozen = len(gc.get_objects(generation=2))
        assert len(kept) == 100_000
        assert gc.get_freeze_count() - frozen >= 50_000  # most of them were settled
        assert unfrozen < 30_000, unfrozen
    finally:
        gc.unfreeze()
