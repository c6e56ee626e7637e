"""The wall clock steps back an hour, then forward two hours, while codes are on locks that
cannot enforce windows themselves: the gateway sees each step against the monotonic clock, says
in its log that it no longer trusts the clock, and keeps every window on the time carried from
its last trusted reading. No code leaves early; none stays past its ``ends_at`` by more than a
second of monotonic time; a code due meanwhile arrives on time."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import FakeClock
from gateway.reconciler import LockReconciler
from gateway.timetrust import TimeState
from tests.e2e.site import Site, running_site

LOCKS = ("front", "back")  # both in space A; sim locks do not enforce windows


async def a_pass(site: Site) -> None:
    """One reconciler pass on each lock at the current time (the fake clock stands still)."""
    for lock_id in LOCKS:
        rec = site.gateway.locks[lock_id]
        done = rec.health.passes
        rec.wake()

        def passed(r: LockReconciler = rec, n: int = done) -> bool:
            return r.health.passes > n

        await site.until(lock_id, passed)


async def test_wall_clock_steps_move_no_window(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.timetrust")
    async with running_site(tmp_path, clock) as site:
        gw = site.gateway
        t0, m0 = clock.now(), clock.monotonic()

        def true_now() -> datetime:
            return t0 + timedelta(seconds=clock.monotonic() - m0)

        def until(t: datetime) -> None:
            """Let true time pass until ``t``."""
            clock.advance((t - true_now()).total_seconds())

        def wall_offset(seconds: float) -> None:
            """Step the wall clock; the cloud's Date header keeps telling the true time."""
            clock.step(seconds)
            control = site.cloud.control
            control.set_clock_skew(control.clock_skew.total_seconds() - seconds)

        def code_grant(pin: str, start: timedelta, end: timedelta) -> str:
            g = site.grant(
                space=site.space_a,
                modes=[{"mode": "code", "code": pin}],
                starts_at=t0 + start,
                ends_at=t0 + end,
            )
            return str(g["access_method_ids"][0])

        a = code_grant("111222", -timedelta(hours=1), timedelta(minutes=30))
        b = code_grant("333444", -timedelta(hours=1), timedelta(minutes=90))
        c = code_grant("555666", timedelta(minutes=20), timedelta(hours=3))
        await site.sync()
        for lock_id in LOCKS:
            await site.until_held(lock_id, {a, b})
        assert gw.trust.assess().state is TimeState.TRUSTED
        caplog.clear()

        # --- the wall clock steps back an hour ---------------------------------------------
        wall_offset(-3600)
        await a_pass(site)
        verdict = gw.trust.assess()
        assert (verdict.trusted, verdict.state) == (False, TimeState.HOLDOVER)
        assert "clock_jumped" in verdict.reasons
        assert verdict.now == true_now() and verdict.wall == true_now() - timedelta(hours=1)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("stepped -3600s" in m for m in warnings)
        assert any(m.startswith("the clock is not trusted (") for m in warnings)

        # C is due at t0+20min although the wall clock says 11:20: it arrives on time.
        until(t0 + timedelta(minutes=20))
        for lock_id in LOCKS:
            await site.until_held(lock_id, {a, b, c})

        # A ends at t0+30min by the true time, an hour before the wall clock gets there.
        until(t0 + timedelta(minutes=30) - timedelta(seconds=1))
        await a_pass(site)
        assert all(site.held(lid) == {a, b, c} for lid in LOCKS)  # not a second early
        until(t0 + timedelta(minutes=30, seconds=0.5))
        for lock_id in LOCKS:  # the fake clock stands still: gone within 0.5 s of ends_at
            await site.until_held(lock_id, {b, c})

        # --- then forward two hours (an hour ahead of the true time) -----------------------
        wall_offset(2 * 3600)
        await a_pass(site)
        assert all(site.held(lid) == {b, c} for lid in LOCKS)  # B has an hour left: it stays
        await site.sync()  # the cloud's Date disagrees with the stepped clock
        verdict = gw.trust.assess()
        assert {"clock_jumped", "cloud_disagrees"} <= set(verdict.reasons)
        assert verdict.now == true_now() and verdict.wall == true_now() + timedelta(hours=1)

        until(t0 + timedelta(minutes=90) - timedelta(seconds=1))
        await a_pass(site)
        assert all(site.held(lid) == {b, c} for lid in LOCKS)
        until(t0 + timedelta(minutes=90, seconds=0.5))
        for lock_id in LOCKS:
            await site.until_held(lock_id, {c})

        # --- NTP sets the wall clock right: trusted again, and the log says so --------------
        caplog.clear()
        wall_offset(-3600)
        await site.sync()
        verdict = gw.trust.assess()
        assert verdict.trusted and verdict.now == verdict.wall == true_now()
        assert "the clock is trusted again" in caplog.text

        until(t0 + timedelta(hours=3, seconds=0.5))
        for lock_id in LOCKS:
            await site.until_held(lock_id, set())
