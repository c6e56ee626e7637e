"""Attacker's side of the gateway's lockout (issue 10, finding 4).

The audit's loop: a few wrong PINs, then the attacker's own valid card (decided by the gateway),
then wrong PINs again. Any allow used to clear the lock's failures and its escalation level, so
the loop guessed forever; wrong card numbers never counted; the budget was per lock only.
"""

from __future__ import annotations

from collections.abc import Iterator
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
CARD = CredentialKind.CARD
LOCKS = [f"door-{i}" for i in range(6)]
VICTIM_PIN = b"424242"
ATTACKER_CARD = b"13371337"


def validator(store: Store, clock: FakeClock, **limits: float) -> Validator:
    scopes = {
        lid: LockScope(lid, frozenset({"space-a"}), frozenset(), frozenset()) for lid in LOCKS
    }
    time_cfg = TimeConfig()
    trust = TimeTrust(clock, store.meta, time_cfg, kernel=lambda: True)
    cfg = ValidatorConfig.model_validate(
        {"lockout_failures": 3, "lockout_window_s": 300, "lockout_base_s": 30, **limits}
    )
    return Validator(
        store, ViewCache(store).current, scopes, clock, trust, time_cfg,
        LockoutPolicy(store.lockouts, cfg),
    )


@pytest.fixture
def site(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """The victim's PIN and the attacker's own card: both live, both for every door."""
    with Store.open(tmp_path / "lockgate.db", SecretRef(file=tmp_path / "store.key")) as store:
        t = clock.now()
        store.cloud.apply_snapshot(
            snapshot(
                [
                    grant("victim", start=t - timedelta(hours=1), hours=48),
                    grant("attacker", start=t - timedelta(hours=1), hours=48),
                    grant("later", start=t + timedelta(hours=2), hours=2),
                ],
                [
                    code("m-victim", "victim", VICTIM_PIN.decode()),
                    card("m-attacker", "attacker", ATTACKER_CARD.decode()),
                    code("m-later", "later", "515151"),
                ],
            ),
            t,
        )
        yield store


def test_own_card_between_pin_guesses_does_not_relieve_the_keypad_lockout(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock)
    reasons: list[str] = []
    for guess in range(40):
        if guess % 2 == 0:  # the attacker's own card after every two guesses
            assert v.decide(CARD, ATTACKER_CARD, "door-0").allow
        reasons.append(v.decide(CODE, f"{guess:06d}".encode(), "door-0").reason)
        clock.advance(seconds=1)
    assert reasons[:3] == ["unknown_credential"] * 3
    assert "locked_out" in reasons
    # the guess that would have found the victim's PIN is refused, not allowed
    assert v.decide(CODE, VICTIM_PIN, "door-0").reason == "locked_out"
    # over 40 guesses of 40 s the keypad was locked out most of the time
    assert reasons.count("unknown_credential") <= 6


def test_a_success_relieves_only_that_credentials_own_failures(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock, lockout_window_s=4 * 3600)
    # the holder of m-later comes too early twice: failures that name m-later
    assert v.decide(CODE, b"515151", "door-0").reason == "outside_window"
    assert v.decide(CODE, b"515151", "door-0").reason == "outside_window"
    clock.advance(hours=2)
    assert v.decide(CODE, b"515151", "door-0").allow  # relieves its own two failures
    assert v.decide(CODE, b"000001", "door-0").reason == "unknown_credential"
    assert v.decide(CODE, b"000002", "door-0").reason == "unknown_credential"
    assert v.decide(CODE, VICTIM_PIN, "door-0").allow
    # ... but a success never relieves guesses that named nobody
    assert v.decide(CODE, b"000003", "door-0").reason == "unknown_credential"
    assert v.decide(CODE, VICTIM_PIN, "door-0").reason == "locked_out"


def test_a_success_after_a_restart_still_relieves_its_own_failures(
    site: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """The buckets whose failures name a method are known from the disk at start (a success
    looks for failures to take back only there)."""
    v = validator(site, clock, lockout_window_s=4 * 3600)
    assert v.decide(CODE, b"515151", "door-0").reason == "outside_window"
    assert v.decide(CODE, b"515151", "door-0").reason == "outside_window"
    clock.advance(hours=2)
    with Store.open(tmp_path / "lockgate.db", SecretRef(file=tmp_path / "store.key")) as again:
        v = validator(again, clock, lockout_window_s=4 * 3600)
        assert v.decide(CODE, b"515151", "door-0").allow  # relieves its own two failures
        assert v.decide(CODE, b"000001", "door-0").reason == "unknown_credential"
        assert v.decide(CODE, b"000002", "door-0").reason == "unknown_credential"
        assert v.decide(CODE, VICTIM_PIN, "door-0").allow
        assert v.decide(CODE, b"000003", "door-0").reason == "unknown_credential"
        assert v.decide(CODE, VICTIM_PIN, "door-0").reason == "locked_out"


def test_wrong_card_numbers_are_counted_with_their_own_threshold(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock, card_lockout_failures=5)
    for n in range(5):
        assert v.decide(CARD, f"9900{n:04d}".encode(), "door-1").reason == "unknown_credential"
    assert v.decide(CARD, ATTACKER_CARD, "door-1").reason == "locked_out"
    assert v.decide(CODE, VICTIM_PIN, "door-1").allow  # the keypad is another budget
    # three wrong PINs lock the keypad, not the reader's (already spent) budget
    for n in range(3):
        v.decide(CODE, f"{n:06d}".encode(), "door-1")
    assert v.decide(CODE, VICTIM_PIN, "door-1").reason == "locked_out"


def test_guesses_spread_over_many_doors_spend_the_site_budget(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock, site_lockout_failures=8, site_lockout_window_s=3600)
    for lid in LOCKS[:4]:  # two guesses per door: under every door's own threshold
        for n in range(2):
            assert v.decide(CODE, f"{n:06d}".encode(), lid).reason == "unknown_credential"
        clock.advance(seconds=20)
    assert v.decide(CODE, VICTIM_PIN, "door-5").reason == "locked_out"
    # a site lockout ends like any other
    clock.advance(seconds=31)
    assert v.decide(CODE, VICTIM_PIN, "door-5").allow


def test_escalation_decays_with_time_not_with_a_success(site: Store, clock: FakeClock) -> None:
    v = validator(site, clock, lockout_decay_s=3600)

    def lock_out() -> None:
        for n in range(3):
            assert v.decide(CODE, f"{n:06d}".encode(), "door-2").reason == "unknown_credential"

    lock_out()  # 30 s
    clock.advance(seconds=31)
    assert v.decide(CODE, VICTIM_PIN, "door-2").allow  # no longer resets the level
    lock_out()  # 60 s
    clock.advance(seconds=31)
    assert v.decide(CODE, VICTIM_PIN, "door-2").reason == "locked_out"
    clock.advance(seconds=30)
    assert v.decide(CODE, VICTIM_PIN, "door-2").allow
    clock.advance(hours=2, seconds=1)  # two quiet decay periods forgive both doublings
    lock_out()  # 30 s again
    clock.advance(seconds=31)
    assert v.decide(CODE, VICTIM_PIN, "door-2").allow


def test_card_and_site_lockouts_survive_a_restart(site: Store, clock: FakeClock) -> None:
    limits = {"card_lockout_failures": 2, "site_lockout_failures": 4}
    v = validator(site, clock, **limits)
    v.decide(CARD, b"99000001", "door-3")
    v.decide(CARD, b"99000002", "door-3")
    v.decide(CODE, b"000001", "door-4")
    v.decide(CODE, b"000002", "door-5")
    v.decide(CODE, b"000003", "door-0")
    v.decide(CODE, b"000004", "door-1")
    again = validator(site, clock, **limits)
    assert again.decide(CARD, ATTACKER_CARD, "door-3").reason == "locked_out"
    assert again.decide(CODE, VICTIM_PIN, "door-2").reason == "locked_out"  # the site's


def test_mobile_keys_are_never_locked_out_by_keypad_guessing(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock)
    for n in range(3):
        v.decide(CODE, f"{n:06d}".encode(), "door-0")
    d = v.decide(CredentialKind.MOBILE_KEY, b"not-a-key", "door-0")
    assert d.reason == "unknown_credential"  # decided on its merits, not "locked_out"


def test_a_lockout_in_force_survives_the_upgrade_of_the_store(
    tmp_path: Path, clock: FakeClock
) -> None:
    import os
    import sqlite3

    from gateway.secrets import create_secret_file
    from gateway.store.crypto import KEY_BYTES
    from gateway.store.schema import MIGRATIONS
    from gateway.store.timefmt import to_db

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    until = clock.now() + timedelta(seconds=90)
    conn.execute("INSERT INTO lockouts VALUES ('door-0', '[]', ?, 2)", (to_db(until),))
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    create_secret_file(tmp_path / "store.key", os.urandom(KEY_BYTES))
    with Store.open(path, SecretRef(file=tmp_path / "store.key")) as store:
        state = store.lockouts.get("door-0", "code")
        assert (state.locked_until, state.level) == (until, 2)


def test_a_state_taken_for_the_write_is_not_changed_by_later_guesses(
    site: Store, clock: FakeClock
) -> None:
    """The states handed to the writing thread are not copies: a later failure replaces a
    bucket's state, never changes the one a write under way holds."""
    policy = LockoutPolicy(site.lockouts, ValidatorConfig())
    policy.failure("door-0", CODE, clock.now(), "m-victim")
    taken = {(scope, kind): state for scope, kind, state in site.lockouts.take_unwritten()}
    assert [len(s.failures) for s in taken.values()] == [1, 1]  # the site's bucket, the lock's
    clock.advance(seconds=1)
    policy.failure("door-0", CODE, clock.now())
    policy.success("door-0", CODE, "m-victim")
    assert [len(s.failures) for s in taken.values()] == [1, 1]
    assert [f.method_id for s in taken.values() for f in s.failures] == ["m-victim"] * 2
    assert len(site.lockouts.get("door-0", "code").failures) == 1  # the newer state: in force
