"""The core flow end to end: a grant in the cloud becomes a working PIN on two locks, is
refused where and when it should be, and comes off when the grant is deleted or ends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.cloud.errors import CloudError
from tests.e2e.site import running_site


@pytest.mark.parametrize("link", ["sim", "serial", "ble"])
async def test_grant_flows_to_locks_opens_them_and_leaves(
    tmp_path: Path, clock: FakeClock, link: str
) -> None:
    async with running_site(tmp_path, clock, link=link) as site:
        assert site.gateway.locks["front"].handle.type_name == link
        start = clock.now() + timedelta(minutes=30)
        end = start + timedelta(hours=2)
        grant = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": "482913"}, {"mode": "card", "card_number": "10047733"}],
            starts_at=start,
            ends_at=end,
        )
        code_id, card_id = grant["access_method_ids"]
        await site.sync()

        # Before starts_at: not on the locks; typed anyway, the gateway says why not.
        assert site.held("front") == set()
        assert not await site.lock("front").enter_code("482913")
        assert site.lock("front").log[-1].reason == "outside_window"

        # At starts_at the PIN and card go onto both locks of the space (within 2 s).
        clock.set(start)
        for lock_id in ("front", "back"):
            await site.until_held(lock_id, {code_id, card_id})
        assert site.held("office") == set()

        assert await site.lock("front").enter_code("482913")
        assert site.lock("front").log[-1].decided_by == "lock"
        assert await site.lock("back").present_card("10047733")
        # A lock outside the grant: its memory does not know the PIN, the gateway refuses it.
        assert not await site.lock("office").enter_code("482913")
        assert site.lock("office").log[-1].reason == "not_for_this_entrance"

        # Deleted in the cloud: gone from both locks within 2 s of the sync.
        site.cloud.state.grants.delete(grant["access_grant_id"])
        await site.sync()
        for lock_id in ("front", "back"):
            await site.until_held(lock_id, set())
        assert not await site.lock("front").enter_code("482913")
        assert site.lock("front").log[-1].reason == "revoked"

        # Every decision is in the outbox, without the PIN or card number.
        for lock_id in ("front", "back", "office"):
            site.gateway.locks[lock_id].events_waiting()
        await site.until(
            "front", lambda: sum(e.get("lock_id") == "front" for e in site.outbox()) >= 3
        )
        await site.until("back", lambda: any(e.get("lock_id") == "back" for e in site.outbox()))
        reasons = sorted((e["lock_id"], e["reason"]) for e in site.outbox() if "reason" in e)
        assert reasons == [
            ("back", "valid"),
            ("front", "outside_window"),
            ("front", "revoked"),
            ("front", "valid"),
            ("office", "not_for_this_entrance"),
        ]
        text = repr(site.outbox())
        assert "482913" not in text and "10047733" not in text


@pytest.mark.parametrize("link", ["sim", "serial", "ble"])
async def test_expiry_removes_codes_on_time_while_the_cloud_is_down(
    tmp_path: Path, clock: FakeClock, link: str
) -> None:
    async with running_site(tmp_path, clock, link=link) as site:
        end = clock.now() + timedelta(hours=1)
        short = site.grant(
            space=site.space_a, modes=[{"mode": "code", "code": "111222"}], ends_at=end
        )
        long = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "333444"}])
        await site.sync()
        short_id, long_id = short["access_method_ids"][0], long["access_method_ids"][0]
        await site.until("front", lambda: site.held("front") == {short_id, long_id})

        site.cloud.control.set_outage("refuse")
        clock.set(end)
        for lock_id in ("front", "back"):
            await site.until_held(lock_id, {long_id})
        # The clock was set to ends_at and never moved on: the removal happened at ends_at.
        assert clock.now() == end

        # The validator still decides with the cloud away.
        assert not await site.lock("front").enter_code("111222")
        assert site.lock("front").log[-1].reason == "outside_window"
        assert await site.lock("front").enter_code("333444")
        decision = site.gateway.validator.decide(
            CredentialKind.CODE, b"333444", "back", dry_run=True
        )
        assert decision.reason == "valid"
        with pytest.raises(CloudError):
            await site.sync()
        assert site.gateway.sync_loop.health.reachable is False
