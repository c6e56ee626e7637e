"""A supervised loop survives its own bugs and never survives a cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.backoff import Backoff
from gateway.tasks import supervised


async def test_a_crashing_loop_is_logged_once_and_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0
    delays: list[float] = []

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise KeyError("boom")  # the same bug three times

    async def sleep(delay: float) -> None:
        delays.append(delay)

    with caplog.at_level(logging.DEBUG, logger="gateway.tasks"):
        await supervised("cloud-sync", loop, backoff=Backoff(1, 60, jitter=0), sleep=sleep)
    assert runs == 4
    assert delays == [1, 60, 60]  # a repeat of the same failure waits the longest delay
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    (error,) = errors
    assert "cloud-sync" in error.getMessage()
    assert error.exc_info is not None and error.exc_info[0] is KeyError


async def test_cancellation_ends_it_even_when_the_loop_turns_it_into_an_error() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("a library that converts cancellation") from None

    task = asyncio.create_task(supervised("plane", loop, sleep=lambda _d: asyncio.sleep(0)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
