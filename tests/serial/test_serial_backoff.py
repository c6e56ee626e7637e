from __future__ import annotations

import pytest

from drivers.backoff import Backoff


def test_exponential_capped_and_reset() -> None:
    policy = Backoff(initial=0.1, maximum=1.0, jitter=0.0)
    assert [policy.next_delay() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    policy.reset()
    assert policy.next_delay() == pytest.approx(0.1)


def test_jitter_only_shortens_and_stays_in_band() -> None:
    draws = iter([0.0, 1.0, 0.5])
    policy = Backoff(initial=1.0, maximum=1.0, jitter=0.2, random=lambda: next(draws))
    assert [policy.next_delay() for _ in range(3)] == pytest.approx([1.0, 0.8, 0.9])


def test_authentication_failures_wait_the_maximum() -> None:
    policy = Backoff(initial=0.05, maximum=30.0, jitter=0.0)
    assert policy.next_delay(auth_failure=True) == 30.0
