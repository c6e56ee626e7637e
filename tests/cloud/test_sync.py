"""Cloud sync: snapshots and event-driven increments into the store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from fakecloud.server import FakeCloudServer
from gateway import sync as sync_module
from gateway.clock import FakeClock
from gateway.cloud.client import CloudClient
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.sync import CloudSync, Scope


@dataclass
class Rig:
    cloud: FakeCloudServer
    sync: CloudSync
    store: Store
    space: str
    other_space: str
    user: str

    def grant(self, code: str, *, space: str | None = None, **kw: object) -> dict:  # type: ignore[type-arg]
        return self.cloud.state.grants.create(
            user_identity_id=self.user,
            space_ids=[space or self.space],
            requested_access_methods=[{"mode": "code", "code": code}],
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Ours")["space_id"]
        other = cloud.state.add_space(name="Not ours")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jo")["user_identity_id"]
        with Store.open(tmp_path / "db", SecretRef(file=tmp_path / "k")) as store:
            async with CloudClient(cloud.url, cloud.api_key, max_retries=0) as client:
                scope = Scope(frozenset({space}), frozenset(), frozenset())
                yield Rig(cloud, CloudSync(client, store, scope, clock), store, space, other, user)


async def test_only_the_sites_grants_are_synced(rig: Rig) -> None:
    ours = rig.grant("1111")
    rig.grant("2222", space=rig.other_space)
    await rig.sync.full()
    assert set(rig.store.cloud.grants()) == {ours["access_grant_id"]}


async def test_unknown_fields_are_kept_and_secrets_are_not_stored_in_clear(rig: Rig) -> None:
    g = rig.grant("90817263", extra={"customer_note": {"floor": 3}})
    await rig.sync.full()
    raw = rig.store.cloud.raw("access_grant", g["access_grant_id"])
    assert raw is not None and raw["customer_note"] == {"floor": 3}
    method = rig.store.cloud.raw("access_method", g["access_method_ids"][0])
    assert method is not None and "code" not in method
    dump = json.dumps([dict(r) for r in rig.store.db.conn.execute("SELECT * FROM cloud_objects")])
    assert "90817263" not in dump


async def test_polls_fetch_only_what_events_name(rig: Rig) -> None:
    for i in range(5):
        rig.grant(f"50{i:02d}")
    await rig.sync.full()
    rig.cloud.control.clear_requests()
    report = await rig.sync.incremental()
    assert report.grants == 0
    assert rig.cloud.control.request_count() == 1  # just /events/list: the snapshot had them

    changed = rig.grant("6000")
    rig.cloud.control.clear_requests()
    report = await rig.sync.incremental()
    assert report.grants == 1
    assert rig.cloud.control.request_count("/access_grants/list") == 1
    assert changed["access_grant_id"] in rig.store.cloud.grants()


async def test_deletions_are_noticed_by_event_and_by_snapshot(rig: Rig) -> None:
    a, b = rig.grant("7001"), rig.grant("7002")
    await rig.sync.full()
    rig.cloud.state.grants.delete(a["access_grant_id"])
    await rig.sync.incremental()
    assert set(rig.store.cloud.grants()) == {b["access_grant_id"]}
    revoked = rig.store.cloud.find_by_secret("code", b"7001")
    assert revoked and revoked[0].revoked_at is not None

    # A method revoked alone (its grant lives on) is noticed too.
    c = rig.cloud.state.grants.create(
        user_identity_id=rig.user,
        space_ids=[rig.space],
        requested_access_methods=[
            {"mode": "code", "code": "7003"},
            {"mode": "code", "code": "7004"},
        ],
    )
    await rig.sync.incremental()
    first, second = list(c["access_method_ids"])  # (the fake cloud mutates c in place)
    rig.cloud.state.methods.revoke(first)
    await rig.sync.incremental()
    live = {m.method_id for m in rig.store.cloud.methods()}
    assert first not in live and second in live

    # Missed events (say the event log was trimmed): the next snapshot still notices.
    rig.cloud.state.grants.delete(b["access_grant_id"])
    await rig.sync.full()
    assert b["access_grant_id"] not in rig.store.cloud.grants()


async def test_an_event_already_applied_is_not_applied_again(rig: Rig) -> None:
    rig.grant("8001")
    await rig.sync.full()
    rig.grant("8002")
    await rig.sync.incremental()
    version = rig.store.cloud.version
    report = await rig.sync.incremental()  # same events again within the overlap window
    assert report.grants == 0 and rig.store.cloud.version == version


def test_mobile_key_material_is_canonicalised_or_refused() -> None:
    import base64

    from gateway.cloud.models import parse_method

    raw = bytes(range(32))
    for text in (
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(raw).decode(),
    ):
        method, problem = parse_method(
            {"access_method_id": "m", "mode": "mobile_key", "mobile_key": {"public_key": text}}, "g"
        )
        assert problem is None and method is not None
        assert method.secret == base64.b64encode(raw)
    method, problem = parse_method(
        {"access_method_id": "m", "mode": "mobile_key", "mobile_key": {"public_key": "c2hvcnQ="}},
        "g",
    )
    assert method is not None and method.problem == problem
    assert problem is not None and "32-byte Ed25519" in problem


async def test_revocations_name_why(rig: Rig) -> None:
    from gateway.store.cloud_data import GONE_FROM_CLOUD

    a, b = rig.grant("7101"), rig.grant("7102")
    await rig.sync.full()
    rig.cloud.state.grants.delete(a["access_grant_id"])
    await rig.sync.incremental()
    gone = rig.store.cloud.grant(a["access_grant_id"])
    assert gone is not None and gone.revoked_reason == GONE_FROM_CLOUD
    # The identity goes with its grant; the snapshot names it.
    rig.cloud.state.delete_user_identity(rig.user)
    await rig.sync.full()
    gone = rig.store.cloud.grant(b["access_grant_id"])
    assert gone is not None and gone.revoked_reason is not None
    assert gone.revoked_reason.startswith(f"user identity {rig.user} was deleted")
    (method,) = rig.store.cloud.methods_of_grant(b["access_grant_id"])
    assert method.revoked_reason == gone.revoked_reason


def test_extension_fields_missing_are_said_in_those_words() -> None:
    from gateway.cloud.models import parse_method

    for mode, field in (("card", "card_number"), ("mobile_key", "mobile_key.public_key")):
        method, problem = parse_method({"access_method_id": "m", "mode": mode}, "g")
        assert method is not None and problem is not None
        assert f"extension field missing: {field}" in problem and "docs/cloud.md" in problem
    method, problem = parse_method(
        {"access_method_id": "m", "mode": "code", "is_issued": False, "code": None}, "g"
    )
    assert method is not None and (problem, method.issued) == (None, False)


def test_seams_own_states_are_read() -> None:
    from gateway.cloud.models import parse_method

    stamp = "2026-03-01T12:00:00.000Z"
    method, _ = parse_method(
        {
            "access_method_id": "m",
            "mode": "code",
            "code": "1234",
            "is_issued": True,
            "errors": [
                {"error_code": "failed_to_issue", "message": "offline", "created_at": stamp}
            ],
            "warnings": [{"warning_code": "being_deleted", "message": "", "created_at": stamp}],
            "pending_mutations": [{"mutation_code": "revoking_access", "message": "m"}],
            "junk": [{"no_code": True}],
        },
        "g",
    )
    assert method is not None
    assert [(n.kind, n.code) for n in method.seam_notes] == [
        ("error", "failed_to_issue"),
        ("warning", "being_deleted"),
        ("pending_mutation", "revoking_access"),
    ]
    assert "1234" not in repr(method)


class _ForgetfulList(httpx.AsyncHTTPTransport):
    """The real cloud, except that ``/user_identities/list`` leaves every identity out."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path != "/user_identities/list":
            return response
        body = json.loads(await response.aread())
        body["user_identities"] = []
        return httpx.Response(200, json=body, headers={"Date": response.headers["Date"]})


async def test_an_identity_a_list_left_out_is_checked_before_anything_is_revoked(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Ours")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jo")["user_identity_id"]
        cloud.state.grants.create(
            user_identity_id=user,
            space_ids=[space],
            requested_access_methods=[{"mode": "code", "code": "7201"}],
        )
        scope = Scope(frozenset({space}), frozenset(), frozenset())
        with Store.open(tmp_path / "db", SecretRef(file=tmp_path / "k")) as store:
            async with CloudClient(
                cloud.url, cloud.api_key, max_retries=0, transport=_ForgetfulList()
            ) as client:
                await CloudSync(client, store, scope, clock).full()
                assert [g.revoked_at for g in store.cloud.grants().values()] == [None]
                assert cloud.control.request_count("/user_identities/get") == 1
                # Really gone: the get answers 404, and the grant goes.
                cloud.state.user_identities.remove(user)
                await CloudSync(client, store, scope, clock).full()
                assert store.cloud.grants() == {}


async def test_a_poll_whose_page_of_events_is_full_reads_everything(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cloud lists events oldest first, a page at a time: when more events than a page
    fall within the overlap (a bulk import), the page is the same known events on every
    poll and nothing after it would be seen until the hourly full sync (a revocation
    included). A full page makes the poll a full sync."""
    monkeypatch.setattr(sync_module, "EVENTS_PAGE", 3)
    kept = rig.grant("9100")
    await rig.sync.full()
    burst = [rig.grant(f"92{i:02d}") for i in range(4)]  # 4+ events: more than a page
    await rig.sync.incremental()
    assert {g["access_grant_id"] for g in burst} <= set(rig.store.cloud.grants())

    rig.cloud.state.grants.delete(kept["access_grant_id"])  # after the burst, in the window
    await rig.sync.incremental()
    assert kept["access_grant_id"] not in rig.store.cloud.grants()
    revoked = rig.store.cloud.find_by_secret("code", b"9100")
    assert revoked and revoked[0].revoked_at is not None


async def test_a_quiet_sites_polls_do_not_fetch_the_last_burst_again(
    rig: Rig, clock: FakeClock
) -> None:
    """The stored cursor is the newest event's time, so every poll of a quiet site would
    fetch again the events of the 5 seconds before it (after a bulk import, up to a page of
    them every poll). A poll that read every event up to the server's time asks from that
    time next (less the overlap), as a poll after a full sync does; and events after it,
    or stamped within the overlap before it, are still read."""
    await rig.sync.full()
    burst = [rig.grant(f"94{i:02d}") for i in range(3)]
    await rig.sync.incremental()
    assert {g["access_grant_id"] for g in burst} <= set(rig.store.cloud.grants())
    newest = clock.now()

    clock.advance(30)
    await rig.sync.incremental()  # asks from the burst (the stored cursor), finds it known
    rig.cloud.control.clear_requests()
    await rig.sync.incremental()
    (asked,) = rig.cloud.control.requests_to("/events/list")
    since = datetime.fromisoformat(str(asked.params["since"]))
    assert since == clock.now() - sync_module.EVENT_OVERLAP > newest  # the burst is behind

    clock.advance(-2)  # an event the cloud stamps 2 s before the time of the last answer
    rig.cloud.state.grants.delete(burst[0]["access_grant_id"])
    await rig.sync.incremental()
    assert burst[0]["access_grant_id"] not in rig.store.cloud.grants()
