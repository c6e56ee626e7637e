"""Recorded decisions are committed in groups: each door is answered only once its group is
durable, and the lockout counts every decision of a group as if they had come one by one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
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
from tests.core.factories import code, grant

CODE = CredentialKind.CODE
PIN = b"424242"
LOCKS = ("front", "back", "side")
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30


def validator(store: Store, clock: FakeClock, **limits: float) -> Validator:
    space = frozenset({"space-a"})
    scopes = {lid: LockScope(lid, space, frozenset(), frozenset()) for lid in LOCKS}
    cfg = TimeConfig()
    return Validator(
        store,
        ViewCache(store).current,
        scopes,
        clock,
        TimeTrust(clock, store.meta, cfg, kernel=lambda: True),
        cfg,
        LockoutPolicy(store.lockouts, ValidatorConfig.model_validate(limits)),
    )


def open_store(path: Path) -> Store:
    return Store.open(path / "lockgate.db", SecretRef(file=path / "store.key"))


def seed(store: Store, clock: FakeClock) -> None:
    t = clock.now()
    store.cloud.apply_snapshot(
        snapshot(
            [grant("g1", start=t - timedelta(hours=1), hours=48)], [code("m1", "g1", "424242")]
        ),
        t,
    )


@pytest.fixture
def site(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with open_store(tmp_path) as store:
        seed(store, clock)
        yield store


def committed_event_ids(db: Path) -> set[str]:
    """What another connection sees: only what has committed."""
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT event_id FROM outbox")}
    finally:
        conn.close()


async def test_concurrent_decisions_share_commits_and_each_is_durable_when_answered(
    site: Store, clock: FakeClock
) -> None:
    v = validator(site, clock)

    async def door(i: int) -> None:
        pin = PIN if i % 3 else f"{i:06d}".encode()
        d = await v.decide_durably(CODE, pin, LOCKS[i % len(LOCKS)])
        assert d.event_id in committed_event_ids(site.db.path)  # answered only when durable

    await asyncio.wait_for(asyncio.gather(*(door(i) for i in range(60))), WAIT_S)
    assert len(site.outbox.entries()) == 60
    assert site.decisions.groups < 60  # decisions made during a commit went in the next one


async def test_the_door_waits_for_its_commit_but_the_next_decision_counts_it(
    site: Store, clock: FakeClock
) -> None:
    """While the group's commit cannot land (another writer holds the database), the door is
    not answered; the failure is counted already, so the next guess meets the lockout."""
    v = validator(site, clock, lockout_failures=1)
    blocker = sqlite3.connect(site.db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.create_task(v.decide_durably(CODE, b"000001", "front"))
        done, _ = await asyncio.wait({first}, timeout=0.3)
        assert not done  # not answered: nothing is durable yet
        assert v.judge(CODE, PIN, "front").reason == "locked_out"  # counted all the same
        second = asyncio.create_task(v.decide_durably(CODE, PIN, "front"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    a, b = await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)
    assert (a.reason, b.reason) == ("unknown_credential", "locked_out")
    assert {a.event_id, b.event_id} <= committed_event_ids(site.db.path)


async def test_a_burst_of_wrong_pins_in_one_group_locks_out_exactly_as_one_by_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The attacker sends guesses at several doors at once, so they arrive while a commit is
    under way and share groups: the lock's bucket and the site's still lock out at exactly
    their thresholds, the victim's PIN is refused after, and a restart keeps it so."""
    limits = {"lockout_failures": 3, "site_lockout_failures": 5}
    guesses = [(f"{i:06d}".encode(), LOCKS[i % 2]) for i in range(12)]  # front, back, ...

    one_by_one = tmp_path / "one"
    one_by_one.mkdir()
    with open_store(one_by_one) as store:
        seed(store, clock)
        v = validator(store, clock, **limits)
        expected = [v.decide(CODE, pin, lock).reason for pin, lock in guesses]
        expected_after = [v.decide(CODE, PIN, lock).reason for lock in LOCKS]
    assert expected.count("unknown_credential") == 5 and expected_after == ["locked_out"] * 3

    burst = tmp_path / "burst"
    burst.mkdir()
    with open_store(burst) as store:
        seed(store, clock)
        v = validator(store, clock, **limits)
        answers = await asyncio.wait_for(
            asyncio.gather(*(v.decide_durably(CODE, pin, lock) for pin, lock in guesses)), WAIT_S
        )
        assert [d.reason for d in answers] == expected
        assert store.decisions.groups < len(guesses)
        after = [(await v.decide_durably(CODE, PIN, lock)).reason for lock in LOCKS]
        assert after == expected_after
    with open_store(burst) as store:  # a restart: the counts and lockouts were on disk
        v = validator(store, clock, **limits)
        assert [v.judge(CODE, PIN, lock).reason for lock in LOCKS] == ["locked_out"] * 3


def test_no_answered_decision_is_lost_when_the_process_is_killed(tmp_path: Path) -> None:
    """A child decides for many doors at once, printing each answer as the door would get it;
    it is killed mid-stream (SIGKILL, no cleanup). Every answered decision is in the store,
    with its failure counted."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.core.group_commit_child", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    answered: dict[str, str] = {}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            event_id, reason = line.split()
            answered[event_id] = reason
            if len(answered) >= 400:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(WAIT_S)
    assert len(answered) >= 400, "the child stopped before answering 400 decisions"
    with open_store(tmp_path) as store:
        stored = {e.event_id: e.payload["reason"] for e in store.outbox.entries()}
        denied = sum(1 for reason in answered.values() if reason == "unknown_credential")
        counted = len(store.lockouts.get("*", "code").failures)
    assert {k: stored.get(k) for k in answered} == answered
    assert counted >= denied > 0


async def test_the_doors_just_answered_join_the_few_waiting_in_one_commit(
    site: Store, clock: FakeClock
) -> None:
    """Five doors, each asking again as soon as answered. The first door's decision commits
    alone, the other four wait for it and go in the next commit (more wait than were
    answered); once those four are answered, the first door's second decision waits alone: it
    is not committed alone, the four doors' second decisions join it. Three commits (1, 4, 5),
    not four (1, 4, 1, 4); each door answered only once its decision is durable."""
    v = validator(site, clock)

    async def door(i: int) -> None:
        for _ in range(2):
            d = await v.decide_durably(CODE, PIN, LOCKS[i % len(LOCKS)])
            assert d.event_id in committed_event_ids(site.db.path)

    await asyncio.wait_for(asyncio.gather(*(door(i) for i in range(5))), WAIT_S)
    assert len(site.outbox.entries()) == 10
    assert site.decisions.groups == 3


async def test_a_failed_commit_answers_its_doors_with_the_error_and_keeps_nothing_of_it(
    site: Store, clock: FakeClock
) -> None:
    """The database refuses one row of a group (a trigger, a real SQLite error in the
    commit's transaction): every door of that group gets the error and none of its events
    is stored, not even those SQLite had taken; the group before is stored. The failure that
    group counted still counts, and is written with the next commit that succeeds."""
    v = validator(site, clock)
    admin = sqlite3.connect(site.db.path, isolation_level=None)
    admin.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox WHEN NEW.lock_id = 'side'"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    try:
        # front commits alone; back (a wrong PIN, counted) and side go in the next group
        answers = await asyncio.wait_for(
            asyncio.gather(
                v.decide_durably(CODE, PIN, "front"),
                v.decide_durably(CODE, b"999999", "back"),
                v.decide_durably(CODE, PIN, "side"),
                return_exceptions=True,
            ),
            WAIT_S,
        )
    finally:
        admin.execute("DROP TRIGGER refuse")
        admin.close()
    front, back, side = answers
    assert not isinstance(front, BaseException) and front.allow
    assert isinstance(back, sqlite3.IntegrityError) and isinstance(side, sqlite3.IntegrityError)
    assert [e.payload["lock_id"] for e in site.outbox.entries()] == ["front"]
    assert site.decisions.groups == 2

    def failures_on_disk() -> int:
        conn = sqlite3.connect(site.db.path)
        try:
            row = conn.execute(
                "SELECT failures FROM lockout_buckets WHERE scope = 'back'"
            ).fetchone()
            return 0 if row is None else len(json.loads(row[0]))
        finally:
            conn.close()

    assert failures_on_disk() == 0  # the failed group wrote nothing
    assert len(site.lockouts.get("back").failures) == 1  # yet it counts
    again = await asyncio.wait_for(v.decide_durably(CODE, PIN, "side"), WAIT_S)
    assert again.allow
    assert failures_on_disk() == 1  # written with the next commit
    assert [e.payload["lock_id"] for e in site.outbox.entries()] == ["front", "side"]
