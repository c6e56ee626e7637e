"""The mobile-key replay record and a security alert's event, written while a first full sync
moves its snapshot in (the database's write lock held on another connection): they wait in
their own tasks, not on the event loop, and commit after it. The replay record still comes
before the door's answer, and a challenge still passes once only, even when two uses race
while the database is held (the attacker's side)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.ble import mobilekey as mk
from gateway.mobilekeys import MobileKeyProofCheck
from gateway.models import AccessMethod
from gateway.store.store import Store
from tests.core.conftest import snapshot
from tests.core.factories import grant
from tests.core.test_bulk_write import HeldMove, committed
from tests.loop_ticks import LoopTicks

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PHONE = os.urandom(32)
LOCK = b"LOCK-001"
METHOD = AccessMethod("mk1", "g1", "mobile_key", secret=mk.public_key_text(mk.public_key_of(PHONE)))


def _proof() -> bytes:
    challenge = os.urandom(16)
    return mk.Proof(challenge, LOCK, mk.sign(PHONE, LOCK, challenge)).encode()


async def _first_sync_held(store: Store) -> tuple[HeldMove, asyncio.Task[int]]:
    """A first full sync held in its move (the write lock taken, nothing committed), and the
    loop's connection set to fail at once where it would wait (``busy_timeout=0``)."""
    store.db.conn.execute("PRAGMA busy_timeout=0")
    held = HeldMove(store.db)
    first = snapshot([grant(f"g{i}", start=T0) for i in range(20)], [])
    return held, await held.running(store.cloud.apply_snapshot_sliced(first, T0))


def _challenges(path: Path) -> int:
    return int(committed(path, "SELECT count(*) FROM mobile_key_challenges")[0][0])


async def test_two_uses_of_one_challenge_racing_a_first_sync_pass_once(store: Store) -> None:
    """An attacker forwards a phone's exchange twice while a first sync holds the database:
    one use passes, the other is refused, the loop never waits, and the answer that let the
    door open comes only once the record is durable (a restart refuses the replay)."""
    check = MobileKeyProofCheck({"front": LOCK}.get, store.mobile_key_challenges)
    held, sync = await _first_sync_held(store)
    # The synchronous write this replaces would fail here (it would wait, holding the loop).
    with (
        pytest.raises(sqlite3.OperationalError, match="locked"),
        store.db.transaction() as conn,
    ):
        conn.execute("INSERT INTO mobile_key_challenges VALUES ('probe', x'00')")
    proof = _proof()
    answered: list[bool] = []

    async def door() -> None:  # what the daemon's decider does: decide, then settle, answer
        allowed = check(METHOD, proof, "front")
        await store.mobile_key_challenges.settle()
        answered.append(allowed)

    doors = [asyncio.create_task(door()), asyncio.create_task(door())]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Both doors wait for the record (the loop does not): no answer before it is durable.
    assert answered == [] and store.db.writers_waiting == 1
    assert _challenges(store.db.path) == 0
    held.release.set()
    async with asyncio.timeout(30):
        await sync
        await asyncio.gather(*doors)
    assert sorted(answered) == [False, True]
    assert _challenges(store.db.path) == 1  # durable: another connection reads it
    assert not check(METHOD, proof, "front")  # and refused from the store from now on
    reopened = Store(store.db.path, (store.db.path.parent / "store.key").read_bytes())
    try:
        assert not reopened.mobile_key_challenges.first_use("mk1", mk.Proof.decode(proof).challenge)
    finally:
        reopened.close()


async def test_the_replay_record_waits_in_its_task_while_the_loop_goes_on(store: Store) -> None:
    seen = store.mobile_key_challenges
    held, sync = await _first_sync_held(store)
    ticks = LoopTicks.start()
    assert seen.first_use("mk1", b"c1")
    assert seen.first_use("mk1", b"c2")
    assert not seen.first_use("mk1", b"c1")
    settling = asyncio.create_task(seen.settle())
    await asyncio.sleep(0)
    before = ticks.count
    await asyncio.sleep(0)
    assert ticks.count > before and not settling.done()  # the loop goes on; the writer waits
    held.release.set()
    async with asyncio.timeout(30):
        await sync
        await settling
    await ticks.stop()
    assert committed(store.db.path, "SELECT challenge FROM mobile_key_challenges ORDER BY 1") == [
        (b"c1",),
        (b"c2",),
    ]
    assert store.db.writers_waiting == 0


async def test_a_claimed_pair_is_written_even_when_nobody_settles(store: Store) -> None:
    """A decision made outside a door's request (an operator's command) claims the pair too:
    its own task writes it."""
    seen = store.mobile_key_challenges
    assert seen.first_use("mk1", b"operator")
    await asyncio.sleep(0)  # one turn of the loop: its task runs, and nothing holds the gate
    assert _challenges(store.db.path) == 1
    assert not seen.first_use("mk1", b"operator")


def test_with_no_loop_running_the_pair_is_written_at_once(store: Store) -> None:
    assert store.mobile_key_challenges.first_use("mk1", b"c")
    assert _challenges(store.db.path) == 1
    assert not store.mobile_key_challenges.first_use("mk1", b"c")
