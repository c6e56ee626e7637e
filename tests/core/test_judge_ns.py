"""The offline decision alone on the daemon's clock takes its time in integer nanoseconds
(``TimeTrust.reading_ns``, grant windows in nanoseconds): it must decide exactly as the same
decision given its time as an aware ``datetime``, and the time trust must say what it says
when read as ``datetime``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from drivers.base import CredentialKind
from gateway.clock import FakeClock, from_ns, to_ns
from gateway.config import TimeConfig, ValidatorConfig
from gateway.lockout import LockoutPolicy
from gateway.planner import LockScope
from gateway.store.store import Store
from gateway.timetrust import KERNEL_RECHECK_S, HonestClock, TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache
from tests.core.conftest import snapshot
from tests.core.factories import card, code, grant

CODE, CARD = CredentialKind.CODE, CredentialKind.CARD
US = timedelta(microseconds=1)


def test_nanoseconds_and_datetimes_convert_exactly() -> None:
    for t in (
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(2099, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    ):
        assert from_ns(to_ns(t)) == t
        assert from_ns(to_ns(t) + 999) == t  # floored to the microsecond, as datetime.now
        assert to_ns(t + US) - to_ns(t) == 1000


def _daemon_validator(store: Store, clock: FakeClock, lockout: int = 3) -> Validator:
    scopes = {
        "front": LockScope("front", frozenset({"space-a"}), frozenset(), frozenset()),
        "back": LockScope("back", frozenset({"space-b"}), frozenset(), frozenset()),
    }
    time_cfg = TimeConfig(policy="allow_within_tolerance", tolerance_s=300)
    trust = TimeTrust(clock, store.meta, time_cfg, kernel=lambda: True)
    lockouts = LockoutPolicy(
        store.lockouts,
        ValidatorConfig(lockout_failures=lockout, lockout_base_s=30, lockout_window_s=300),
    )
    return Validator(
        store, ViewCache(store).current, scopes, HonestClock(trust, clock), trust, time_cfg,
        lockouts,
    )


def test_judge_on_the_daemons_clock_decides_as_with_its_time_given(
    store: Store, clock: FakeClock
) -> None:
    """Around every window boundary (a microsecond either side), for every reason the usual
    path gives: the same decision from the nanosecond path as from the ``datetime`` one."""
    t = clock.now()
    start, end = t + timedelta(hours=1), t + timedelta(hours=3)
    store.cloud.apply_snapshot(
        snapshot(
            [
                grant("g1", start=start, hours=2),
                grant("g2", start=None, hours=None),
                grant("g3", start=t - timedelta(hours=1), hours=None),
                grant("g4", start=t - timedelta(hours=1), hours=2, spaces=("space-b",)),
                grant("g5", start=t - timedelta(hours=1), hours=1, problem="bad window"),
            ],
            [
                code("m1", "g1", "123456"),
                card("m2", "g1", "44556677"),
                code("m3", "g2", "999000"),
                code("m4", "g3", "555111"),
                code("m5", "g4", "777888"),
                code("m6", "g5", "333444"),
            ],
        ),
        t,
    )
    v = _daemon_validator(store, clock)
    asked = [
        (kind, secret.encode(), lock)
        for kind, secret in (
            (CODE, "123456"),
            (CARD, "44556677"),
            (CODE, "999000"),
            (CODE, "555111"),
            (CODE, "777888"),
            (CODE, "333444"),
            (CODE, "000000"),
        )
        for lock in ("front", "back", "nowhere")
    ]
    reasons: set[str] = set()
    for at in (t, start - US, start, start + US, end - US, end, end + US, end + timedelta(days=1)):
        clock.set(at)
        for kind, secret, lock in asked:
            fast = v.judge(kind, secret, lock)
            assert fast == v.judge(kind, secret, lock, t=at), (at, kind, secret, lock)
            reasons.add(fast.reason)
    assert reasons == {
        "valid",
        "outside_window",
        "not_for_this_entrance",
        "invalid_grant",
        "unknown_credential",
    }
    store.cloud.apply_snapshot(snapshot([], []), clock.now())
    assert v.judge(CODE, b"999000", "front").reason == "revoked"


def test_judge_on_the_daemons_clock_sees_a_lockout_until_it_ends(
    store: Store, clock: FakeClock
) -> None:
    t = clock.now()
    store.cloud.apply_snapshot(
        snapshot([grant("g2", start=t - timedelta(hours=1))], [code("m3", "g2", "999000")]), t
    )
    v = _daemon_validator(store, clock, lockout=2)
    for _ in range(2):
        assert v.decide(CODE, b"000000", "front").reason == "unknown_credential"
    locked = v.judge(CODE, b"999000", "front")
    assert locked.reason == "locked_out"
    assert locked == v.judge(CODE, b"999000", "front", t=clock.now())
    clock.advance(seconds=30)  # lockout_base_s: over at this very microsecond
    assert v.judge(CODE, b"999000", "front").allow
    clock.advance(seconds=-1e-6)
    assert v.judge(CODE, b"999000", "front").reason == "locked_out"


def test_reading_in_nanoseconds_says_what_reading_says(store: Store) -> None:
    """Two trusts on two clocks moved alike: one read only as ``datetime``, the other in
    nanoseconds (now and then as ``datetime`` too): the same time and the same verdict after
    every move (a step, a step back, a fall behind the floor, a lost kernel sync)."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clocks = FakeClock(start), FakeClock(start)
    kernel = [True]
    plain, fast = (
        TimeTrust(c, store.meta, TimeConfig(), kernel=lambda: kernel[0]) for c in clocks
    )

    def both(move: Callable[[FakeClock], object]) -> None:
        for c in clocks:
            move(c)

    def same(mixed: bool = False) -> None:
        t, why = plain.reading()
        got = fast.reading() if mixed else fast.reading_ns()
        assert (to_ns(got[0]) if isinstance(got[0], datetime) else got[0], got[1]) == (
            to_ns(t),
            why,
        )

    same()
    for k in range(6):
        both(lambda c: c.advance(seconds=0.3))
        same(mixed=k % 3 == 2)
    both(lambda c: c.step(seconds=3))  # more than max_jump_s
    same()
    assert fast.reading_ns()[1] == ("clock_jumped",)
    both(lambda c: c.advance(seconds=1))
    same()
    both(lambda c: c.step(seconds=-3))  # back to the time carried: trusted again
    same()
    both(lambda c: c.advance(seconds=0.5))
    same()
    plain.raise_floor()  # the floor is stored: both trusts read it when raising their own
    fast.raise_floor()
    both(lambda c: c.step(seconds=-1.5))  # behind the floor
    same()
    assert fast.reading_ns()[1] == ("behind_floor",)
    both(lambda c: c.advance(seconds=2))
    same()
    kernel[0] = False
    both(lambda c: c.advance(seconds=2 * KERNEL_RECHECK_S))
    same()
    assert fast.reading_ns()[1] == ("not_synchronised",)
    kernel[0] = True
    same(mixed=True)
    same()
    assert fast.assess() == plain.assess()
