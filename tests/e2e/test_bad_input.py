"""Bad input from the cloud or the locks: a clear error for the one credential, the rest applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.clock import FakeClock
from gateway.cloud.errors import CloudBadResponseError
from tests.e2e.site import Site, running_site


def states(site: Site, lock_id: str) -> dict[str, tuple[str, str | None]]:
    return {
        k: (v.state.value, v.error_code)
        for k, v in site.gateway.store.sync_states.for_lock(lock_id).items()
    }


async def test_each_bad_object_fails_alone(tmp_path: Path, clock: FakeClock) -> None:
    async with running_site(tmp_path, clock) as site:
        state = site.cloud.state
        good = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "246810"}])
        good_id = good["access_method_ids"][0]
        refused = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "135790"}])
        refused_id = refused["access_method_ids"][0]
        site.lock("front").faults.reject_ids.add(refused_id)
        site.lock("back").faults.full = True

        # A code with letters, and a grant whose window ends before it starts: the fake cloud's
        # own API refuses to create these, so they are injected as raw objects.
        now = clock.now().isoformat()
        state.inject_raw(
            "access_methods",
            {"access_method_id": "m-letters", "mode": "code", "code": "12AB34"},
            access_grant_id="g-letters",
        )
        state.inject_raw(
            "access_grants",
            {
                "access_grant_id": "g-letters",
                "space_ids": [site.space_a],
                "starts_at": now,
                "access_method_ids": ["m-letters"],
            },
        )
        state.inject_raw(
            "access_methods",
            {"access_method_id": "m-backwards", "mode": "code", "code": "777888"},
            access_grant_id="g-backwards",
        )
        state.inject_raw(
            "access_grants",
            {
                "access_grant_id": "g-backwards",
                "space_ids": [site.space_a],
                "starts_at": "2026-03-02T00:00:00Z",
                "ends_at": "2026-03-01T00:00:00Z",
                "access_method_ids": ["m-backwards"],
            },
        )
        state.inject_raw("access_grants", {"space_ids": [site.space_a], "no": "id at all"})
        await site.sync(full=True)  # raw objects come with no cloud events: ask for a snapshot

        await site.until("front", lambda: good_id in site.held("front"))
        await site.until(
            "back", lambda: states(site, "back").get(good_id) == ("failed", "capacity")
        )
        front = states(site, "front")
        assert front[good_id] == ("applied", None)
        assert front[refused_id] == ("failed", "rejected")
        assert front["m-letters"] == ("failed", "code_rule")
        assert front["m-backwards"] == ("failed", "invalid_grant")
        assert site.held("front") == {good_id}
        # The grant without an id is a sync issue, not a crash.
        issues = site.gateway.store.cloud.issues()
        assert any(t == "access_grant" and oid == "?" for t, oid, _ in issues)
        assert ("access_grant", "g-backwards", "ends_at is not after starts_at") in issues
        # The errors say why, without the secret.
        row = site.gateway.store.sync_states.for_lock("front")["m-letters"]
        assert row.error and "alphabet" in row.error and "12AB34" not in row.error


async def test_malformed_json_keeps_the_last_whole_snapshot(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        first = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "112233"}])
        await site.sync()
        first_id = first["access_method_ids"][0]
        await site.until("front", lambda: site.held("front") == {first_id})

        second = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "445566"}])
        second_id = second["access_method_ids"][0]
        site.cloud.control.fail_next(1, "malformed_json", path="/access_grants/list")
        with pytest.raises(CloudBadResponseError):
            await site.gateway.sync_loop.sync_now(full=True)
        health = site.gateway.sync_loop.health
        assert health.reachable is False and health.last_error_code == "cloud_bad_response"
        assert set(site.gateway.store.cloud.grants()) == {first["access_grant_id"]}
        assert site.held("front") == {first_id}

        await site.sync()
        await site.until("front", lambda: site.held("front") == {first_id, second_id})
        assert site.gateway.sync_loop.health.reachable is True
