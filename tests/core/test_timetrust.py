"""Honest time: steps of the wall clock are seen against the monotonic clock, the clock is then
untrusted until a witness vouches for it, and time runs on the monotonic-anchored estimate."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from gateway.clock import FakeClock
from gateway.config import TimeConfig
from gateway.store.store import Store
from gateway.timetrust import HonestClock, TimeState, TimeTrust

Kernel = list[bool | None]


def make(store: Store, clock: FakeClock, kernel: Kernel | None = None, **cfg: object) -> TimeTrust:
    state: Kernel = kernel if kernel is not None else [True]
    return TimeTrust(clock, store.meta, TimeConfig(**cfg), kernel=lambda: state[0])  # type: ignore[arg-type]


def test_a_step_forward_is_seen_and_time_runs_on(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.timetrust")
    trust = make(store, clock)
    t0 = clock.now()
    assert trust.assess().state is TimeState.TRUSTED and trust.trusted_now() == t0
    assert caplog.records == []  # trusted from the start: nothing to say

    clock.advance(minutes=10)
    clock.step(hours=2)  # someone ran `date -s`
    a = trust.assess()
    assert (a.trusted, a.reasons, a.state) == (False, ("clock_jumped",), TimeState.HOLDOVER)
    assert a.now == t0 + timedelta(minutes=10)  # the last trusted reading + monotonic time
    assert a.wall == t0 + timedelta(hours=2, minutes=10)
    assert trust.trusted_now() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stepped +7200s" in m for m in warnings)
    assert any("not trusted (clock_jumped)" in m for m in warnings)

    clock.advance(minutes=5)  # the estimate keeps running on the monotonic clock
    assert trust.now() == t0 + timedelta(minutes=15)
    # The kernel says it is synchronised throughout: that does not vouch for a step.
    assert not trust.assess().trusted


def test_a_step_back_and_forward_again_is_trusted_again(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.timetrust")
    trust = make(store, clock)
    t0 = clock.now()
    trust.assess()
    clock.step(hours=-1)
    clock.advance(minutes=20)
    a = trust.assess()
    assert a.reasons == ("clock_jumped",) and a.now == t0 + timedelta(minutes=20)
    clock.step(hours=1)  # back where the time carried since the last trusted reading is
    assert trust.assess().trusted and trust.now() == t0 + timedelta(minutes=20)
    assert "the clock is trusted again" in caplog.text


def test_the_cloud_vouches_for_a_stepped_clock(store: Store, clock: FakeClock) -> None:
    trust = make(store, clock)
    trust.observe_cloud_time(clock.now())
    clock.step(hours=2)
    # The cloud's last word, carried to the new wall time, now disagrees too.
    assert trust.assess().reasons == ("clock_jumped", "cloud_disagrees")
    trust.observe_cloud_time(clock.now())  # a fresh Date agrees with the new time: NTP was right
    a = trust.assess()
    assert a.trusted and a.now == a.wall == clock.now()


def test_a_kernel_that_synchronises_after_the_step_vouches_for_it(
    store: Store, clock: FakeClock
) -> None:
    kernel: Kernel = [False]
    trust = make(store, clock, kernel)
    assert trust.assess().reasons == ("not_synchronised",)
    clock.step(days=300)  # a Pi booted in the past; NTP steps it and the kernel is in sync
    kernel[0] = True
    assert trust.assess().trusted


def test_before_any_trusted_time_the_floor_plus_uptime_is_the_estimate(
    store: Store, clock: FakeClock
) -> None:
    make(store, clock).raise_floor()
    floor = clock.now()
    clock.step(days=-200)  # power cut; the Pi boots with an old time and no network
    trust = make(store, clock, [False])
    a = trust.assess()
    assert (a.state, a.reasons) == (TimeState.UNSET, ("behind_floor", "not_synchronised"))
    assert a.now == floor
    clock.advance(minutes=3)
    assert trust.now() == floor + timedelta(minutes=3)  # never earlier than the true time
    clock.step(days=200, minutes=5)  # NTP answers: the true time is a bit later than that
    trust.observe_cloud_time(clock.now())
    assert trust.assess().trusted and trust.now() == floor + timedelta(minutes=8)


def test_without_floor_or_trust_the_wall_clock_is_all_there_is(
    store: Store, clock: FakeClock
) -> None:
    trust = make(store, clock, [False])
    a = trust.assess()
    assert (a.state, a.now) == (TimeState.UNSET, clock.now())


def test_the_floor_rises_only_while_trusted(store: Store, clock: FakeClock) -> None:
    trust = make(store, clock)
    trust.raise_floor()
    first = store.meta.get("time_floor")
    clock.advance(minutes=10)
    clock.step(hours=5)
    trust.raise_floor()
    assert store.meta.get("time_floor") == first


async def test_honest_clock_timers_run_on_monotonic_time(store: Store, clock: FakeClock) -> None:
    trust = make(store, clock)
    honest = HonestClock(trust, clock)
    t0 = clock.now()
    deadline = t0 + timedelta(minutes=30)
    waiter = asyncio.create_task(honest.wait_until(deadline, asyncio.Event()))
    await asyncio.sleep(0)
    clock.step(hours=2)  # the wall clock is past the deadline: the timer must not fire
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(minutes=29)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(minutes=1)
    async with asyncio.timeout(2):
        await waiter
    assert honest.now() == deadline


async def test_honest_clock_timers_are_not_held_by_a_step_back(
    store: Store, clock: FakeClock
) -> None:
    trust = make(store, clock)
    honest = HonestClock(trust, clock)
    deadline = clock.now() + timedelta(minutes=30)
    waiter = asyncio.create_task(honest.wait_until(deadline, asyncio.Event()))
    await asyncio.sleep(0)
    clock.step(hours=-1)
    clock.advance(minutes=30)
    async with asyncio.timeout(2):
        await waiter
    assert clock.now() == deadline - timedelta(hours=1)


def test_a_trusted_clock_is_checked_again_on_every_reading(store: Store, clock: FakeClock) -> None:
    """While trusted, a reading takes a short path (the verdict stands unless this reading
    shows otherwise): a lost kernel sync, a step and a fall behind the floor are each seen by
    the very next reading, and what the short path takes as trusted is what the full
    assessment says."""
    kernel: Kernel = [True]
    trust = make(store, clock, kernel)
    for _ in range(3):
        clock.advance(seconds=1)
        assert trust.distrust() == () and trust.now() == clock.now()
    assert trust.assess().trusted
    kernel[0] = False  # NTP lost: no cloud confirmation either
    assert trust.distrust() == ("not_synchronised",)
    kernel[0] = True
    assert trust.distrust() == ()
    clock.advance(seconds=1)
    clock.step(seconds=3)  # more than max_jump_s (2 s)
    assert trust.distrust() == ("clock_jumped",)
    assert trust.now() == clock.now() - timedelta(seconds=3)  # the estimate, not the wall
    clock.step(seconds=-3)  # back to the carried time: trusted again
    assert trust.distrust() == () and trust.now() == clock.now()
    trust.raise_floor()
    clock.step(seconds=-1.5)  # within max_jump_s, but behind the floor just raised
    assert trust.distrust() == ("behind_floor",)
    assert not trust.assess().trusted
    clock.advance(seconds=2)  # past the floor again
    assert trust.distrust() == () and trust.assess().trusted
