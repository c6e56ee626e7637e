"""The state directory's filesystem fills up (a real tmpfs, real ENOSPC, real SQLite): the
gateway stays up, keeps its locks in line and keeps deciding from what the store holds, counts
keypad guesses all the same, says ``store_full`` in its status and log, and once space returns
catches up with the cloud and records every decision it made meanwhile. Nothing committed is
lost and ``integrity_check`` is ok."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.mqtt.state import StateView
from gateway.mqtt.topics import Topics
from gateway.store.db import StoreFullError
from gateway.supervise import describe
from tests.e2e.site import running_site
from tests.fullfs import fill, integrity, shrink_wal, small_tmpfs

CODE = CredentialKind.CODE


async def test_a_full_disk_is_ridden_out(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with small_tmpfs(tmp_path / "state", "8m") as disk:
        async with running_site(disk, clock) as site:
            gw = site.gateway
            t0 = clock.now()
            ending = site.grant(
                space=site.space_a,
                modes=[{"mode": "code", "code": "111222"}],
                starts_at=t0 - timedelta(hours=1),
                ends_at=t0 + timedelta(minutes=30),
            )["access_method_ids"][0]
            kept = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "333444"}])
            kept_id = kept["access_method_ids"][0]
            await site.sync()
            for lock_id in ("front", "back"):
                await site.until_held(lock_id, {ending, kept_id})
            assert await site.lock("office").enter_code("111222") is False  # committed
            before = [e.event_id for e in gw.store.outbox.entries()]
            assert before

            shrink_wal(gw.store.db.conn)
            filler = fill(disk)

            # The cloud changes; the gateway fetches it but cannot store it: it says so, lives on.
            site.cloud.state.grants.delete(kept["access_grant_id"])
            added = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "555666"}])
            with pytest.raises(StoreFullError):
                await site.sync()
            assert gw.store.db.full
            assert "store_full:" in caplog.text
            assert gw.sync_loop.health.last_error_code == "store_full"
            state = StateView(gw, Topics("lockgate", gw.config.gateway_id)).gateway_state()
            assert state["store"]["error_code"] == "store_full"
            assert "store_full since" in describe(gw)

            # Decisions go on: a PIN the lock does not hold is decided by the gateway ...
            assert await site.lock("office").enter_code("333444") is False  # another space
            assert site.lock("office").log[-1].reason == "not_for_this_entrance"
            # ... and guessing is counted in memory: five wrong PINs lock the keypad out.
            for _ in range(5):
                assert await site.lock("back").enter_code("000000") is False
            locked = gw.decide(CODE, b"111222", "back", dry_run=True)
            assert locked.reason == "locked_out"
            waiting = [e.event_id for e in gw.validator.unsaved]
            assert len(waiting) == 7  # the six decisions and the dry run (credential_tested)

            # The locks go on: the code that ends comes off on time, from what the store holds.
            clock.advance(minutes=30)
            for lock_id in ("front", "back"):
                await site.until_held(lock_id, {kept_id})
            front = gw.locks["front"]
            await site.until("front", lambda: front.health.last_error_code == "store_full")
            assert gw.store.db.full

            # Space returns: the keeper retries, the sync and the locks catch up at once.
            filler.unlink()
            clock.advance(seconds=60)  # past the keeper's longest retry delay
            await site.until(
                "front", lambda: not gw.store.db.full and not gw.validator.unsaved, wait=5
            )
            for lock_id in ("front", "back"):
                await site.until_held(lock_id, {added["access_method_ids"][0]})
            await site.until("front", lambda: front.health.last_error_code is None)
            assert "the store takes writes again" in caplog.text

            after = {e.event_id for e in gw.store.outbox.entries()}
            assert set(before) <= after and set(waiting) <= after
            state = StateView(gw, Topics("lockgate", gw.config.gateway_id)).gateway_state()
            assert state["store"] == {
                "error_code": None,
                "full_since": None,
                "unsaved_events": 0,
            }
            db_path = gw.store.db.path

        # Written to disk, not only kept in memory: the lockout and every event.
        assert integrity(db_path) == "ok"
        conn = sqlite3.connect(db_path)
        try:
            (until,) = conn.execute(
                "SELECT locked_until FROM lockout_buckets WHERE scope = 'back' AND kind = 'code'"
            ).fetchone()
            assert until is not None
            stored = {r[0] for r in conn.execute("SELECT event_id FROM outbox")}
            assert set(waiting) <= stored
        finally:
            conn.close()
