"""Offline decisions: every allow and deny with its reason, recorded in the outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig, ValidatorConfig
from gateway.lockout import LockoutPolicy
from gateway.planner import LockScope
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import TimeTrust
from gateway.validator import Validator
from gateway.views import ViewCache
from tests.core.conftest import snapshot
from tests.core.factories import card, code, grant

CODE = CredentialKind.CODE


def make(
    store: Store,
    clock: FakeClock,
    *,
    synced: bool = True,
    policy: str = "deny_time_bounded",
    lockout: int = 3,
) -> Validator:
    scopes = {
        "front": LockScope("front", frozenset({"space-a"}), frozenset(), frozenset()),
        "back": LockScope("back", frozenset({"space-b"}), frozenset(), frozenset()),
    }
    time_cfg = TimeConfig(policy=policy, tolerance_s=300)
    trust = TimeTrust(clock, store.meta, time_cfg, kernel=lambda: synced)
    policy_obj = LockoutPolicy(
        store.lockouts,
        ValidatorConfig(lockout_failures=lockout, lockout_base_s=30, lockout_window_s=300),
    )
    return Validator(store, ViewCache(store).current, scopes, clock, trust, time_cfg, policy_obj)


@pytest.fixture
def seeded(store: Store, clock: FakeClock) -> Store:
    t = clock.now()
    store.cloud.apply_snapshot(
        snapshot(
            [
                grant("g1", start=t + timedelta(hours=1), hours=2),
                grant("g2", start=t - timedelta(hours=1)),
            ],
            [code("m1", "g1", "123456"), card("m2", "g1", "44556677"), code("m3", "g2", "999000")],
        ),
        t,
    )
    return store


def test_every_reason(seeded: Store, clock: FakeClock) -> None:
    v = make(seeded, clock)
    d = v.decide(CODE, b"123456", "front")
    assert (d.allow, d.reason, d.detail) == (False, "outside_window", "not yet valid")
    clock.advance(hours=1)
    d = v.decide(CODE, b"123456", "front")
    assert (d.allow, d.reason, d.access_method_id, d.access_grant_id) == (True, "valid", "m1", "g1")
    assert v.decide(CredentialKind.CARD, b"44556677", "front").allow
    assert v.decide(CODE, b"123456", "back").reason == "not_for_this_entrance"
    assert v.decide(CODE, b"000000", "front").reason == "unknown_credential"
    clock.advance(hours=2)
    d = v.decide(CODE, b"123456", "front")
    assert (d.reason, d.detail) == ("outside_window", "expired")
    seeded.cloud.apply_snapshot(snapshot([], []), clock.now())
    assert v.decide(CODE, b"999000", "front").reason == "revoked"


def test_every_decision_is_an_access_event_without_the_secret(
    seeded: Store, clock: FakeClock
) -> None:
    v = make(seeded, clock)
    decisions = [v.decide(CODE, pin, "front") for pin in (b"123456", b"999000", b"000001")]
    entries = seeded.outbox.entries()
    assert [e.event_id for e in entries] == [d.event_id for d in decisions]
    assert [e.payload["reason"] for e in entries] == [
        "outside_window",
        "valid",
        "unknown_credential",
    ]
    for e in entries:
        text = repr(e.payload)
        assert "123456" not in text and "999000" not in text and "000001" not in text


def test_dry_run_is_recorded_without_identities_and_its_failures_count(
    seeded: Store, clock: FakeClock
) -> None:
    v = make(seeded, clock, lockout=3)
    d = v.decide(CODE, b"999000", "front", dry_run=True, tested_by="olga")
    assert d.allow
    (event,) = [e.payload for e in seeded.outbox.entries()]
    assert event["kind"] == "credential_tested" and event["reason"] == "valid"
    assert event["event_id"] == d.event_id  # the decision names the event that records it
    assert event["detail"] == "dry run by operator olga"
    assert not {"access_method_id", "access_grant_id", "user_identity_id"} & set(event)
    for pin in (b"1", b"2", b"3"):
        assert v.decide(CODE, pin, "front", dry_run=True).reason == "unknown_credential"
    assert v.decide(CODE, b"999000", "front").reason == "locked_out"


def test_keypad_lockout_after_failures_even_for_a_valid_code(
    seeded: Store, clock: FakeClock
) -> None:
    v = make(seeded, clock, lockout=3)
    for pin in (b"1", b"2", b"3"):
        assert v.decide(CODE, pin, "front").reason == "unknown_credential"
    assert v.decide(CODE, b"999000", "front").reason == "locked_out"
    assert v.decide(CODE, b"999000", "back").reason == "not_for_this_entrance"  # per lock
    clock.advance(seconds=31)
    assert v.decide(CODE, b"999000", "front").allow
    # after a success the count starts again; the next lockout doubles only if level stayed
    for pin in (b"1", b"2", b"3"):
        v.decide(CODE, pin, "front")
    assert v.decide(CODE, b"999000", "front").reason == "locked_out"


def test_lockout_survives_a_restart(seeded: Store, clock: FakeClock) -> None:
    v = make(seeded, clock, lockout=2)
    v.decide(CODE, b"1", "front")
    v.decide(CODE, b"2", "front")
    again = make(seeded, clock, lockout=2)
    assert again.decide(CODE, b"999000", "front").reason == "locked_out"


def test_untrusted_clock_deny_policy(seeded: Store, clock: FakeClock) -> None:
    v = make(seeded, clock, synced=False)
    d = v.decide(CODE, b"999000", "front")
    assert (d.allow, d.reason) == (False, "clock_untrusted")


def test_untrusted_clock_tolerance_policy(seeded: Store, clock: FakeClock) -> None:
    v = make(seeded, clock, synced=False, policy="allow_within_tolerance")
    assert v.decide(CODE, b"999000", "front").reason == "valid_clock_tolerance"
    clock.advance(minutes=56)  # g1 starts in 4 minutes: inside the 5-minute tolerance
    assert v.decide(CODE, b"123456", "front").reason == "valid_clock_tolerance"


def test_a_clock_behind_its_floor_is_not_trusted(seeded: Store, clock: FakeClock) -> None:
    trust = TimeTrust(clock, seeded.meta, TimeConfig(), kernel=lambda: True)
    trust.raise_floor()
    clock.step(hours=-2)  # the Pi rebooted with an old fake-hwclock time: a new process
    v = make(seeded, clock, synced=True)
    trust = TimeTrust(clock, seeded.meta, TimeConfig(), kernel=lambda: True)
    assert trust.assess().reasons == ("behind_floor",)
    assert v.decide(CODE, b"999000", "front").reason == "clock_untrusted"


def test_cloud_date_can_vouch_for_the_clock_and_can_refute_it(
    seeded: Store, clock: FakeClock
) -> None:
    trust = TimeTrust(clock, seeded.meta, TimeConfig(max_cloud_skew_s=60), kernel=lambda: False)
    assert not trust.assess().trusted
    trust.observe_cloud_time(clock.now() - timedelta(seconds=20))
    assert trust.assess().trusted
    trust.observe_cloud_time(clock.now() - timedelta(minutes=10))
    assert trust.assess().reasons == ("cloud_disagrees", "not_synchronised")


def test_a_scope_replaced_under_the_same_lock_is_seen_by_the_next_decision(
    seeded: Store, clock: FakeClock
) -> None:
    scopes = {"front": LockScope("front", frozenset({"space-a"}), frozenset(), frozenset())}
    trust = TimeTrust(clock, seeded.meta, TimeConfig(), kernel=lambda: True)
    policy = LockoutPolicy(seeded.lockouts, ValidatorConfig())
    v = Validator(seeded, ViewCache(seeded).current, scopes, clock, trust, TimeConfig(), policy)
    assert v.judge(CODE, b"999000", "front").allow  # g2 serves space-a
    scopes["front"] = LockScope("front", frozenset({"space-b"}), frozenset(), frozenset())
    assert v.judge(CODE, b"999000", "front").reason == "not_for_this_entrance"


def test_a_change_of_the_data_is_seen_by_the_next_decision(seeded: Store, clock: FakeClock) -> None:
    v = make(seeded, clock)
    assert v.judge(CODE, b"999000", "front").allow
    t = clock.now()
    seeded.cloud.apply_snapshot(
        snapshot([grant("g2", start=t - timedelta(hours=1))], [code("m4", "g2", "555111")]), t
    )
    assert v.judge(CODE, b"999000", "front").reason == "revoked"
    assert v.judge(CODE, b"555111", "front").allow


def test_a_lockout_is_seen_after_the_store_is_opened_again(
    seeded: Store, clock: FakeClock, tmp_path: Path
) -> None:
    v = make(seeded, clock, lockout=2)
    v.decide(CODE, b"1", "front")
    v.decide(CODE, b"2", "front")
    key = SecretRef(file=tmp_path / "store.key")
    with Store.open(tmp_path / "lockgate.db", key) as again:  # its own copy of the lockouts
        assert make(again, clock, lockout=2).judge(CODE, b"999000", "front").reason == (
            "locked_out"
        )
        clock.advance(seconds=31)
        assert make(again, clock, lockout=2).judge(CODE, b"999000", "front").allow
