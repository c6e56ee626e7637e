"""The one retry policy (drivers.backoff) as the gateway's loops use it."""

from __future__ import annotations

from drivers.backoff import Backoff


def test_a_refused_key_waits_exactly_the_maximum_and_still_counts() -> None:
    policy = Backoff(1.0, 300.0, random=lambda: 0.0)
    assert policy.give_up_for_now() == 300.0
    assert policy.failures == 1
    assert policy.next_delay() == 2.0  # the climb goes on from there
    policy.reset()
    assert policy.next_delay() == 1.0


def test_delays_stay_between_half_the_ceiling_and_the_ceiling() -> None:
    low, high = Backoff(1.0, 8.0, random=lambda: 0.999999), Backoff(1.0, 8.0, random=lambda: 0.0)
    for ceiling in (1.0, 2.0, 4.0, 8.0, 8.0):
        assert ceiling / 2 <= low.next_delay() <= ceiling
        assert high.next_delay() == ceiling


def test_a_long_outage_stays_at_the_maximum() -> None:
    policy = Backoff(1.0, 300.0, random=lambda: 0.0)
    policy.failures = 100_000  # days of a cloud that does not answer
    assert policy.next_delay() == 300.0
