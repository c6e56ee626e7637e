"""The gateway behaves as Seam's own objects say (issue 14), end to end on the fake cloud.

User identity deletion through the official SDK, the same code in two grants (one user, two
users), and Seam's own states of access methods (``is_issued``, ``errors``, ``warnings``).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from seam.seam import AsyncSeam

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.mqtt.commands import cmd_grant_sync_state
from gateway.mqtt.payloads import GrantArgs
from gateway.store.sync_state import SyncStatus
from tests.e2e.site import Site, running_site

PIN = "482913"


def rows(site: Site, lock_id: str) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        mid: (s.state.value, s.error_code, s.error)
        for mid, s in site.gateway.store.sync_states.for_lock(lock_id).items()
    }


async def grant_state(site: Site, grant_id: str) -> dict[str, Any]:
    ctx = SimpleNamespace(gw=site.gateway)
    answer = await cmd_grant_sync_state(ctx, GrantArgs(grant_id=grant_id))  # type: ignore[arg-type]
    assert isinstance(answer, dict)
    return answer


async def test_sdk_deletes_a_user_identity_and_its_pins_leave_every_lock(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_site(tmp_path, clock) as site:
        stay = site.grant(space=site.space_a, modes=[{"mode": "code", "code": PIN}])
        office = site.grant(space=site.space_b, modes=[{"mode": "code", "code": "551177"}])
        other_user = site.cloud.state.add_user_identity(full_name="Omar")["user_identity_id"]
        other = site.cloud.state.grants.create(
            user_identity_id=other_user,
            space_ids=[site.space_a],
            requested_access_methods=[{"mode": "code", "code": "909090"}],
        )
        await site.sync()
        mine = {stay["access_method_ids"][0], office["access_method_ids"][0]}
        keep = other["access_method_ids"][0]
        await site.until(
            "front", lambda: site.held("front") == {stay["access_method_ids"][0], keep}
        )
        await site.until("office", lambda: site.held("office") == {office["access_method_ids"][0]})

        async with AsyncSeam(api_key=site.cloud.api_key, endpoint=site.cloud.url) as seam:
            await seam.user_identities.delete(user_identity_id=site.user)
        assert site.user not in site.cloud.state.user_identities

        await site.sync()  # the next poll: Seam's access_grant.deleted events name the grants
        for lock_id, left in (("front", {keep}), ("back", {keep}), ("office", set())):
            await site.until_held(lock_id, left)
        assert not mine & set(rows(site, "front"))
        assert any(
            r.levelno == logging.WARNING
            and site.user in r.getMessage()
            and "deleted" in r.getMessage()
            for r in caplog.records
        )

        why = f"user identity {site.user} was deleted in the cloud"
        state = await grant_state(site, stay["access_grant_id"])
        assert state["revoked"] is True and why in state["revoked_reason"]
        assert state["user_identity_id"] == site.user
        assert all(why in m["revoked_reason"] for m in state["methods"])

        assert not await site.lock("front").enter_code(PIN)
        event = site.outbox()[-1]
        assert (event["reason"], event["user_identity_id"]) == ("revoked", site.user)
        assert why in event["detail"] and PIN not in json.dumps(site.outbox())
        assert await site.lock("front").enter_code("909090")


async def test_identity_being_deleted_or_gone_with_grants_still_listed_is_revoked(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        state = site.cloud.state
        second = state.add_user_identity(full_name="Li")["user_identity_id"]
        first = site.grant(space=site.space_a, modes=[{"mode": "code", "code": PIN}])
        later = state.grants.create(
            user_identity_id=second,
            space_ids=[site.space_a],
            requested_access_methods=[{"mode": "code", "code": "246810"}],
        )
        await site.sync()
        await site.until("front", lambda: len(site.held("front")) == 2)

        # Seam at work: the identity and its grants carry being_deleted, still listed.
        state.delete_user_identity(site.user, finish=False)
        await site.sync(full=True)
        await site.until("front", lambda: site.held("front") == set(later["access_method_ids"]))
        reason = (await grant_state(site, first["access_grant_id"]))["revoked_reason"]
        assert "being deleted" in reason and site.user in reason

        # An identity gone while its grants are still listed: revoked at the next snapshot.
        state.user_identities.remove(second)
        await site.sync(full=True)
        await site.until("front", lambda: site.held("front") == set())
        reason = (await grant_state(site, later["access_grant_id"]))["revoked_reason"]
        assert reason == f"user identity {second} was deleted in the cloud"


async def test_one_user_same_pin_in_two_grants_is_one_slot_while_either_is_live(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        now = clock.now()
        stay = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": PIN}],
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
        )
        extension = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": PIN}],
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=5),
        )
        first, second = stay["access_method_ids"][0], extension["access_method_ids"][0]
        await site.sync()
        await site.until("front", lambda: site.held("front") == {first})
        state, _, why = rows(site, "front")[second]
        assert state == SyncStatus.SHARED.value and first in str(why)

        # The first stay ends; the code stays, in the same slot, for the extension.
        clock.set(now + timedelta(hours=3))
        await site.until(
            "front", lambda: site.gateway.locks["front"].health.last_pass_at == clock.now()
        )
        assert site.held("front") == {first}
        assert await site.lock("front").enter_code(PIN)

        # Both over: gone.
        clock.set(now + timedelta(hours=5))
        await site.until("front", lambda: site.held("front") == set())
        assert not await site.lock("front").enter_code(PIN)


async def test_two_users_same_pin_the_earlier_grant_keeps_it_and_both_say_so(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        state = site.cloud.state
        now = clock.now()
        holder = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": PIN}],
            starts_at=now - timedelta(minutes=5),
        )
        omar = state.add_user_identity(full_name="Omar")["user_identity_id"]
        refused = state.grants.create(
            user_identity_id=omar,
            space_ids=[site.space_a],
            requested_access_methods=[{"mode": "code", "code": PIN}],
        )
        held_by, refused_m = holder["access_method_ids"][0], refused["access_method_ids"][0]
        await site.sync()
        await site.until("front", lambda: rows(site, "front").get(held_by, ("",))[0] == "applied")
        assert site.held("front") == {held_by}

        by_lock = rows(site, "front")
        code, why = by_lock[refused_m][1:]
        assert by_lock[refused_m][0] == "failed" and code == "duplicate_code_on_device"
        assert site.user in str(why) and holder["access_grant_id"] in str(why)
        note_code, note = by_lock[held_by][1:]
        assert note_code == "duplicate_code_on_device"
        assert omar in str(note) and refused["access_grant_id"] in str(note)
        assert PIN not in repr(by_lock)

        # Typed, the PIN opens as the holder's; the event says who holds it and who was refused.
        assert await site.lock("front").enter_code(PIN)
        site.gateway.locks["front"].events_waiting()
        await site.until("front", lambda: any(e.get("source") == "lock" for e in site.outbox()))
        event = next(e for e in site.outbox() if e.get("source") == "lock")
        assert event["access_method_id"] == held_by
        assert event["access_grant_id"] == holder["access_grant_id"]
        assert event["user_identity_id"] == site.user
        assert refused["access_grant_id"] in event["detail"] and omar in event["detail"]
        assert PIN not in json.dumps(site.outbox())

        # The gateway's own decision (a lock asking it) names the same holder.
        decision = site.gateway.validator.decide(
            CredentialKind.CODE, PIN.encode(), "front", dry_run=True
        )
        assert (decision.allow, decision.access_grant_id) == (True, holder["access_grant_id"])

        # The holder's grant is deleted: the other user's grant gets the code.
        state.grants.delete(holder["access_grant_id"])
        await site.sync()
        await site.until("front", lambda: site.held("front") == {refused_m})
        decision = site.gateway.validator.decide(
            CredentialKind.CODE, PIN.encode(), "front", dry_run=True
        )
        assert (decision.allow, decision.user_identity_id) == (True, omar)


async def test_seam_method_states_are_shown_and_acted_on(tmp_path: Path, clock: FakeClock) -> None:
    async with running_site(tmp_path, clock) as site:
        state = site.cloud.state
        unissued = site.grant(space=site.space_a, modes=[{"mode": "code"}], issue=False)
        failing = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "777111"}])
        leaving = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "777222"}])
        u_m, f_m, l_m = (g["access_method_ids"][0] for g in (unissued, failing, leaving))
        state.access_methods[u_m].pop("code")  # Seam has no code for it yet
        stamp = state.stamp()
        state.methods.update(
            f_m,
            extra={
                "errors": [
                    {
                        "error_code": "failed_to_issue",
                        "message": "Lock offline.",
                        "created_at": stamp,
                    }
                ]
            },
        )
        await site.sync(full=True)
        await site.until("front", lambda: site.held("front") == {f_m, l_m})

        by_lock = rows(site, "front")
        assert by_lock[u_m][:2] == ("scheduled", "not_issued")
        assert by_lock[f_m][:2] == ("applied", "failed_to_issue")
        assert "Lock offline." in str(by_lock[f_m][2])
        shown = await grant_state(site, failing["access_grant_id"])
        assert shown["methods"][0]["seam"]["errors"] == [
            {"code": "failed_to_issue", "message": "Lock offline."}
        ]
        assert shown["methods"][0]["seam"]["is_issued"] is True

        # Seam issues it with a code (access_method.issued): it goes on at the next poll.
        state.access_methods[u_m]["code"] = "777333"
        state.methods.issue(u_m)
        await site.sync()
        await site.until("front", lambda: site.held("front") == {u_m, f_m, l_m})
        # Seam is deleting the other one (a warning, no event: the next full snapshot sees
        # it): it comes off, revoked, and says why.
        state.methods.update(
            l_m,
            extra={
                "warnings": [{"warning_code": "being_deleted", "message": "", "created_at": stamp}]
            },
        )
        await site.sync(full=True)
        await site.until("front", lambda: site.held("front") == {u_m, f_m})
        reason = (await grant_state(site, leaving["access_grant_id"]))["methods"][0][
            "revoked_reason"
        ]
        assert "being_deleted" in reason


async def test_a_code_already_on_the_lock_moves_into_the_earlier_grants_slot(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock) as site:
        later = site.grant(space=site.space_a, modes=[{"mode": "code", "code": PIN}])
        await site.sync()
        late_m = later["access_method_ids"][0]
        await site.until("front", lambda: site.held("front") == {late_m})
        # A booking of the same person that started earlier arrives: it holds the slot now.
        earlier = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": PIN}],
            starts_at=clock.now() - timedelta(hours=1),
        )
        early_m = earlier["access_method_ids"][0]
        await site.sync()
        await site.until("front", lambda: site.held("front") == {early_m})
        await site.until("front", lambda: rows(site, "front").get(late_m, ("",))[0] == "shared")
        assert await site.lock("front").enter_code(PIN)
