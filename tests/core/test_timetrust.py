"""Honest time: steps of the wall clock are seen against the monotonic clock, the clock is then
untrusted until a witness vouches for it, and time runs on the monotonic-anchored estimate."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clock import FakeClock
from gateway.config import TimeConfig
from gateway.store.store import Store
from gateway.timetrust import (
    CLOUD_CONFIRMATION_VALID_S,
    KERNEL_RECHECK_S,
    STEADY_SPAN_S,
    HonestClock,
    TimeState,
    TimeTrust,
)

Kernel = list[bool | None]


def make(
    store: Store,
    clock: FakeClock,
    kernel: Kernel | None = None,
    span_s: float = STEADY_SPAN_S,
    **cfg: object,
) -> TimeTrust:
    state: Kernel = kernel if kernel is not None else [True]
    return TimeTrust(clock, store.meta, TimeConfig(**cfg), kernel=lambda: state[0], span_s=span_s)


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
    shows otherwise): a step and a fall behind the floor are each seen by the very next
    reading, a lost kernel sync by the first reading once the kernel is due to be asked again
    (KERNEL_RECHECK_S), and what the short path takes as trusted is what the full assessment
    says."""
    kernel: Kernel = [True]
    trust = make(store, clock, kernel)
    for _ in range(3):
        clock.advance(seconds=1)
        assert trust.distrust() == () and trust.now() == clock.now()
    assert trust.assess().trusted
    kernel[0] = False  # NTP lost: no cloud confirmation either
    clock.advance(seconds=2 * KERNEL_RECHECK_S)
    assert trust.distrust() == ("not_synchronised",)
    assert trust.reading() == (clock.now(), ("not_synchronised",))
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


def test_the_kernel_is_asked_at_most_once_per_recheck_while_nothing_changes(
    store: Store, clock: FakeClock
) -> None:
    """adjtimex costs a third of an offline decision: while the clock is trusted and steady,
    readings within KERNEL_RECHECK_S of the last question take its answer; a step is still
    seen on the very next reading (no question needed), and a full assessment always asks."""
    asked: list[None] = []
    state: Kernel = [True]

    def kernel() -> bool | None:
        asked.append(None)
        return state[0]

    trust = TimeTrust(clock, store.meta, TimeConfig(), kernel=kernel)
    assert trust.assess().trusted
    before = len(asked)
    for _ in range(100):
        clock.advance(seconds=KERNEL_RECHECK_S / 200)
        assert trust.reading() == (clock.now(), ())
        assert trust.distrust() == () and trust.now() == clock.now()
    assert len(asked) - before == 0  # 0.05 s of readings, all inside one recheck period
    clock.advance(seconds=2 * KERNEL_RECHECK_S)
    assert trust.distrust() == ()
    assert len(asked) - before == 1  # due again: asked once
    clock.step(seconds=3)  # within the recheck period, and more than max_jump_s
    assert trust.reading() == (clock.now() - timedelta(seconds=3), ("clock_jumped",))
    clock.step(seconds=-3)
    asked.clear()
    state[0] = False  # lost, and a full assessment asks whatever the period says
    assert trust.assess().reasons == ("not_synchronised",) and len(asked) == 1


def test_a_clock_trusted_on_the_clouds_word_takes_the_short_path_until_that_word_is_old(
    store: Store, clock: FakeClock
) -> None:
    """The kernel says unsynchronised (a container, a Pi without NTP) and the cloud's Date
    agreed: trusted, each reading on the short path, until the cloud's word is older than
    CLOUD_CONFIRMATION_VALID_S; and a kernel that synchronises meanwhile is noted (so a later
    step is not taken for NTP's)."""
    state: Kernel = [False]
    trust = make(store, clock, state)
    assert trust.distrust() == ("not_synchronised",)
    trust.observe_cloud_time(clock.now())
    for _ in range(3):
        clock.advance(hours=1)
        assert trust.reading() == (clock.now(), ())
    clock.advance(seconds=CLOUD_CONFIRMATION_VALID_S - 3 * 3600)
    assert trust.distrust() == ()
    clock.advance(seconds=1)  # the cloud's word is too old now, and the kernel still says no
    assert trust.distrust() == ("not_synchronised",)
    assert trust.reading()[1] == ("not_synchronised",)
    trust.observe_cloud_time(clock.now())
    assert trust.distrust() == ()
    state[0] = True  # NTP syncs: seen once the kernel is asked again
    clock.advance(seconds=2 * KERNEL_RECHECK_S)
    assert trust.distrust() == ()
    clock.advance(seconds=1)
    clock.step(hours=1)  # a step after the kernel was seen synchronised: not NTP's
    assert trust.distrust() == ("clock_jumped", "cloud_disagrees")


def test_one_reading_gives_the_same_time_and_verdict_as_two(
    store: Store, clock: FakeClock
) -> None:
    """reading() is now() and distrust() at once, trusted or not, on every path."""
    state: Kernel = [True]
    trust = make(store, clock, state)
    twin_clock = FakeClock(clock.now())
    twin = make(store, twin_clock, state)

    def both(move: str, seconds: float) -> None:
        for c in (clock, twin_clock):
            getattr(c, move)(seconds=seconds)
        assert trust.reading() == (twin.now(), twin.distrust())

    both("advance", 1)
    both("step", 3600)  # untrusted: the estimate, with the reason
    both("advance", 30)
    both("step", -3600)  # back: trusted again
    state[0] = False
    both("advance", 2 * KERNEL_RECHECK_S)
    both("advance", 1)


def test_within_a_steady_span_a_step_is_still_seen_at_once(store: Store, clock: FakeClock) -> None:
    """Readings within STEADY_SPAN_S of the last one checked in full are checked against the
    span's bounds only: a step of more than max_jump_s (2 s) either way, at any time in the
    span, is seen on the very reading after it; so is the clock behind a floor raised
    meanwhile; and steps within one span add up (measured from the span's base)."""
    for seconds in (2.001, -2.001, 30, -30):
        for into in (0.0, 0.001, STEADY_SPAN_S / 2, STEADY_SPAN_S):
            trust = make(store, clock)
            assert trust.reading() == (clock.now(), ())  # in full: the verdict
            assert trust.reading() == (clock.now(), ())  # steady, in full: the span's base
            clock.advance(seconds=into)
            assert trust.reading() == (clock.now(), ())  # in the span
            clock.step(seconds=seconds)
            assert trust.reading()[1] == ("clock_jumped",), (seconds, into)
    for floor_first in (False, True):
        trust = make(store, clock)
        assert trust.reading() == (clock.now(), ())  # in full: the verdict
        if floor_first:
            trust.raise_floor()
            clock.advance(seconds=STEADY_SPAN_S / 4)
        assert trust.reading() == (clock.now(), ())  # steady, in full: the span's base
        if not floor_first:
            clock.advance(seconds=STEADY_SPAN_S / 4)
            trust.raise_floor()
        clock.step(seconds=-0.5)  # a step under max_jump_s, but behind the floor just raised
        assert trust.reading()[1] == ("behind_floor",)
        clock.advance(seconds=1)  # past that floor again
    trust = make(store, clock, [False])  # trusted on the cloud's word: its end is in a span
    trust.observe_cloud_time(clock.now())
    clock.advance(seconds=CLOUD_CONFIRMATION_VALID_S - STEADY_SPAN_S / 2)
    assert trust.reading() == (clock.now(), ())  # steady, in full: the span's base
    clock.advance(seconds=STEADY_SPAN_S / 4)
    assert trust.reading() == (clock.now(), ())  # in the span
    clock.advance(seconds=STEADY_SPAN_S / 2)  # the cloud's word is too old now
    assert trust.reading()[1] == ("not_synchronised",)
    trust.observe_cloud_time(clock.now())
    for span in (STEADY_SPAN_S, 0.0):  # 0: no span, each reading against the one before
        trust = make(store, clock, span_s=span)
        assert trust.reading() == (clock.now(), ())  # in full: the verdict
        assert trust.reading() == (clock.now(), ())  # steady, in full: the span's base
        clock.advance(seconds=STEADY_SPAN_S / 4)
        clock.step(seconds=1.5)
        assert trust.reading()[1] == ()  # 1.5 s: under max_jump_s
        clock.advance(seconds=STEADY_SPAN_S / 4)
        clock.step(seconds=1.5)
        assert trust.reading()[1] == (("clock_jumped",) if span else ())


_OPS = st.sampled_from(
    [
        ("advance", 0.001),
        ("advance", 0.3),
        ("advance", 0.9),
        ("advance", 1.5),
        ("advance", 7200.0),
        ("advance", CLOUD_CONFIRMATION_VALID_S),
        ("step", 3.0),
        ("step", -3.0),
        ("step", 3600.0),
        ("step", -3600.0),
        ("kernel", True),
        ("kernel", False),
        ("kernel", None),
        ("cloud", 0.0),
        ("cloud", 600.0),
        ("floor", 0.0),
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(_OPS, max_size=25), require_kernel=st.booleans())
def test_a_steady_span_changes_no_reading(
    store: Store, ops: list[tuple[str, float | bool | None]], require_kernel: bool
) -> None:
    """Every reading with the span the same as without it (each against the reading before),
    through any sequence of time passing, steps of more than max_jump_s, kernel sync coming
    and going, cloud dates that agree or not, and floors raised: steps within one span add up
    only when each is under max_jump_s, which these are not."""
    clocks = [FakeClock(), FakeClock()]
    kernel: Kernel = [True]
    spanned, unspanned = (
        make(store, c, kernel, span_s=span, require_kernel_sync=require_kernel)
        for c, span in zip(clocks, (STEADY_SPAN_S, 0.0), strict=True)
    )
    for op, arg in ops:
        for trust, c in ((spanned, clocks[0]), (unspanned, clocks[1])):
            if op == "advance":
                c.advance(seconds=float(arg or 0))
            elif op == "step":
                c.step(seconds=float(arg or 0))
            elif op == "cloud":
                trust.observe_cloud_time(c.now() + timedelta(seconds=float(arg or 0)))
            elif op == "floor":
                trust.raise_floor()
        if op == "kernel":
            kernel[0] = arg if arg is None else bool(arg)
        assert spanned.reading() == unspanned.reading(), (op, arg)
