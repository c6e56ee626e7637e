"""Every command over a real Mosquitto, and every way a request can be wrong: each answered
with its typed error, and none of them changing anything."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lockgate_sim.broker import Mosquitto
from lockgate_sim.driver import SimDriver

from drivers.base import BoltState
from gateway.mqtt.auth import sign
from tests.core.factories import code, grant
from tests.mqtt.harness import (
    WAIT,
    Operators,
    Requester,
    Seal,
    Site,
    Watcher,
    broker_options,
    running_site,
)

PIN = "482916"
SEALED_SHAPE = base64.b64encode(bytes(60))
"""Well-formed as a sealed value, opens to nothing."""


def ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Observed:
    """Everything a refused command must leave as it was."""

    bolt: BoltState
    lock_log: int
    outbox: int
    sync_states: dict[str, Any]
    floors: dict[str, str | None]
    locks: tuple[str, ...]
    puts: int


def observe(site: Site) -> Observed:
    store = site.gw.store
    return Observed(
        site.sim.bolt,
        len(site.sim.log),
        len(store.outbox.entries()),
        {k: (v.state, v.attempts) for k, v in store.sync_states.for_lock("front").items()},
        {n: store.meta.get(f"mqtt.auth_floor.{n}") for n in site.operators.keys},
        tuple(site.gw.locks),
        sum(site.sim.put_counts.values()),
    )


def error_of(response: dict[str, Any]) -> tuple[str, str | None]:
    assert response["status"] == "error", response
    assert response["data"] is None
    return response["error"]["code"], response["error"].get("field")


async def load_one_code(site: Site) -> None:
    now = datetime.now(UTC)
    site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", PIN)])
    rec = site.gw.locks["front"]
    async with asyncio.timeout(WAIT):
        await rec.wait_for(lambda: site.gw.store.sync_states.counts("front")["applied"] == 1)


# --- bad requests ----------------------------------------------------------------------------
BAD_REQUESTS: list[tuple[str, str, bytes, str, str | None]] = [
    ("malformed JSON", "unlock", b'{"args": {"lock_id": "front"', "bad_payload", None),
    ("not UTF-8", "status", b"\xff\xfe{}", "bad_payload", None),
    ("empty payload", "status", b"", "bad_payload", None),
    ("a JSON list", "unlock", b"[1, 2]", "bad_payload", None),
    ("NaN", "unlock", b'{"args": {"lock_id": "front", "hold_seconds": NaN}}', "bad_payload", None),
    ("unknown command", "open_sesame", b'{"args": {}}', "unknown_command", None),
    (
        "wrong type: string for int",
        "unlock",
        b'{"args": {"lock_id": "front", "hold_seconds": "5"}}',
        "bad_payload",
        "args.hold_seconds",
    ),
    (
        "wrong type: number for string",
        "unlock",
        b'{"args": {"lock_id": 7}}',
        "bad_payload",
        "args.lock_id",
    ),
    (
        "wrong type: bool for int",
        "unlock",
        b'{"args": {"lock_id": "front", "hold_seconds": true}}',
        "bad_payload",
        "args.hold_seconds",
    ),
    ("args not an object", "unlock", b'{"args": ["front"]}', "bad_payload", "args"),
    ("missing field", "unlock", b'{"args": {}}', "bad_payload", "args.lock_id"),
    (
        "extra field",
        "unlock",
        b'{"args": {"lock_id": "front", "force": true}}',
        "bad_payload",
        "args.force",
    ),
    (
        "out of range",
        "unlock",
        b'{"args": {"lock_id": "front", "hold_seconds": 0}}',
        "bad_payload",
        "args.hold_seconds",
    ),
    ("bad lock id", "unlock", b'{"args": {"lock_id": "../x"}}', "bad_payload", "args.lock_id"),
    ("unknown envelope field", "status", b'{"args": {}, "sudo": true}', "bad_payload", "sudo"),
    ("bad transaction", "status", b'{"transaction": {"a": 1}}', "bad_payload", "transaction"),
    (
        "auth missing sig",
        "unlock",
        b'{"args": {"lock_id": "front"}, "auth": {"operator": "olga", "ts": 1, '
        b'"nonce": "aaaaaaaaaaaaaaaa"}}',
        "bad_payload",
        "auth.sig",
    ),
    (
        "auth sig not base64",
        "unlock",
        b'{"args": {"lock_id": "front"}, "auth": {"operator": "olga", "ts": 1, '
        b'"nonce": "aaaaaaaaaaaaaaaa", "sig": "%%%"}}',
        "bad_payload",
        "auth.sig",
    ),
    ("unsigned unlock", "unlock", b'{"args": {"lock_id": "front"}}', "unauthorised", None),
    (
        "unsigned remove_lock",
        "remove_lock",
        b'{"args": {"lock_id": "front"}}',
        "unauthorised",
        None,
    ),
    (
        "unsigned test_credential",
        "test_credential",
        b'{"args": {"lock_id": "front", "secret": {"sealed": "%s"}}}' % SEALED_SHAPE,
        "unauthorised",
        None,
    ),
    (
        "plaintext secret",
        "test_credential",
        b'{"args": {"lock_id": "front", "secret": "482916"}}',
        "bad_payload",
        "args.secret",
    ),
    (
        "plaintext pairing secret",
        "commission",
        b'{"args": {"lock_id": "front", "pairing_secret": "pair-1"}}',
        "bad_payload",
        "args.pairing_secret",
    ),
    (
        "sealed not base64",
        "test_credential",
        b'{"args": {"lock_id": "front", "secret": {"sealed": "%%%"}}}',
        "bad_payload",
        "args.secret.sealed",
    ),
]


@pytest.mark.parametrize(
    ("what", "command", "payload", "code", "field"),
    BAD_REQUESTS,
    ids=[b[0] for b in BAD_REQUESTS],
)
async def test_bad_requests_get_typed_errors_and_change_nothing(
    site: Site,
    requester: Requester,
    what: str,
    command: str,
    payload: bytes,
    code: str,
    field: str | None,
) -> None:
    before = observe(site)
    response = await requester.raw(command, payload)
    assert error_of(response) == (code, field)
    assert "482916" not in json.dumps(response)
    assert observe(site) == before


async def test_oversized_payload_refused_unread(site: Site, requester: Requester) -> None:
    before = observe(site)
    big = json.dumps({"args": {"lock_id": "front"}, "pad": "x" * 20_000}).encode()
    assert error_of(await requester.raw("unlock", big)) == ("payload_too_large", None)
    assert observe(site) == before


async def test_transaction_is_echoed_even_on_errors(site: Site, requester: Requester) -> None:
    r = await requester.raw("unlock", b'{"transaction": "t-42", "args": {}}')
    assert r["transaction"] == "t-42" and error_of(r) == ("bad_payload", "args.lock_id")
    r = await requester.raw("status", b'{"transaction": 7}')
    assert r["status"] == "ok" and r["transaction"] == 7


# --- signatures on a real unlock ------------------------------------------------------------
async def test_signed_unlock_opens_the_lock(site: Site, requester: Requester) -> None:
    r = await requester.request(
        "unlock", {"lock_id": "front", "hold_seconds": 30}, sign_as=site.operators.signer("olga")
    )
    assert r["status"] == "ok", r
    assert r["data"] == {"lock_id": "front", "bolt": "unlocked", "hold_seconds": 30}
    assert site.bolt() is BoltState.UNLOCKED
    r = await requester.request("lock", {"lock_id": "front"}, sign_as=site.operators.signer("ada"))
    assert r["data"]["bolt"] == "locked" and site.bolt() is BoltState.LOCKED


async def test_replayed_unlock_refused_and_door_stays_shut(
    site: Site, requester: Requester
) -> None:
    args = {"lock_id": "front"}
    olga = site.operators.signer("olga")
    auth = sign(
        olga[1],
        "olga",
        "unlock",
        args,
        gateway_id=site.topics.gateway_id,
        topic=site.topics.request("unlock"),
        ts=ms(),
    )
    captured = json.dumps({"args": args, "auth": auth}).encode()
    assert (await requester.raw("unlock", captured))["status"] == "ok"
    await requester.request("lock", args, sign_as=olga)
    # The lock's audit-log pass after the lock goes on after the answer: let it finish.
    async with asyncio.timeout(WAIT):
        await site.gw.locks["front"].wait_for(lambda: not site.sim.log)
    before = observe(site)
    assert error_of(await requester.raw("unlock", captured)) == ("replayed", None)
    assert observe(site) == before
    assert site.bolt() is BoltState.LOCKED


@pytest.mark.parametrize(
    ("who", "command", "args", "expected"),
    [
        ("vera", "unlock", {"lock_id": "front"}, "forbidden"),
        ("vera", "test_credential", {"lock_id": "front", "secret": Seal(PIN)}, "forbidden"),
        ("olga", "remove_lock", {"lock_id": "front"}, "forbidden"),
        ("olga", "log_level", {"level": "DEBUG"}, "forbidden"),
        ("olga", "commission", {"lock_id": "front", "pairing_secret": Seal("s3cret")}, "forbidden"),
    ],
)
async def test_under_privileged_signatures_forbidden(
    site: Site, requester: Requester, who: str, command: str, args: dict[str, Any], expected: str
) -> None:
    before = observe(site)
    level = logging.getLogger().level
    r = await requester.request(command, args, sign_as=site.operators.signer(who))
    assert error_of(r) == (expected, None)
    assert observe(site) == before
    assert logging.getLogger().level == level


async def test_stale_tampered_and_foreign_signatures_refused(
    site: Site, requester: Requester
) -> None:
    olga = site.operators.signer("olga")
    before = observe(site)
    r = await requester.request("unlock", {"lock_id": "front"}, sign_as=olga, ts_ms=ms() - 120_000)
    assert error_of(r) == ("stale", None)
    r = await requester.request("unlock", {"lock_id": "front"}, sign_as=olga, ts_ms=ms() + 120_000)
    assert error_of(r) == ("stale", None)
    signed_for_5 = sign(
        olga[1],
        "olga",
        "unlock",
        {"lock_id": "front", "hold_seconds": 5},
        gateway_id=site.topics.gateway_id,
        topic=site.topics.request("unlock"),
        ts=ms(),
    )
    r = await requester.request(
        "unlock", {"lock_id": "front", "hold_seconds": 3600}, auth=signed_for_5
    )
    assert error_of(r) == ("unauthorised", None)
    other_gateway = sign(
        olga[1],
        "olga",
        "unlock",
        {"lock_id": "front"},
        gateway_id="gw-other",
        topic="lockgate/gw-other/request/unlock",
        ts=ms(),
    )
    r = await requester.request("unlock", {"lock_id": "front"}, auth=other_gateway)
    assert error_of(r) == ("unauthorised", None)
    as_lock = sign(
        olga[1],
        "olga",
        "lock",
        {"lock_id": "front"},
        gateway_id=site.topics.gateway_id,
        topic=site.topics.request("lock"),
        ts=ms(),
    )
    r = await requester.request("unlock", {"lock_id": "front"}, auth=as_lock)
    assert error_of(r) == ("unauthorised", None)
    assert observe(site) == before


async def test_replay_after_gateway_restart_refused(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    olga = operators.signer("olga")
    opts = broker_options(broker)
    async with running_site(tmp_path / "gw", broker, operators) as site:
        auth = sign(
            olga[1],
            "olga",
            "unlock",
            {"lock_id": "front"},
            gateway_id=site.topics.gateway_id,
            topic=site.topics.request("unlock"),
            ts=ms(),
        )
        captured = json.dumps({"args": {"lock_id": "front"}, "auth": auth}).encode()
        async with Requester(opts, site.topics, identity=site.identity) as r:
            assert (await r.raw("unlock", captured))["status"] == "ok"
    async with running_site(tmp_path / "gw", broker, operators) as site:  # same store
        before = observe(site)
        async with Requester(opts, site.topics, identity=site.identity) as r:
            assert error_of(await r.raw("unlock", captured)) == ("replayed", None)
            assert observe(site) == before
            fresh = await r.request("unlock", {"lock_id": "front"}, sign_as=olga)
            assert fresh["status"] == "ok"


# --- each command ---------------------------------------------------------------------------
async def test_status_reports_cloud_clock_and_counts(site: Site, requester: Requester) -> None:
    await load_one_code(site)
    r = await requester.request("status")
    assert r["status"] == "ok" and r["error"] is None
    data = r["data"]
    assert data["gateway_id"] == "gw-test"
    assert data["cloud"]["reachable"] is False
    assert data["cloud"]["last_error_code"] == "cloud_unavailable"
    clock = data["clock"]
    assert (clock["trusted"], clock["state"], clock["reasons"]) == (True, "trusted", [])
    assert clock["now"] == clock["wall"]
    assert data["counts"]["locks"] == 1 and data["counts"]["locks_connected"] == 1
    assert data["counts"]["credentials"]["applied"] == 1


async def test_sync_with_the_cloud_down_is_a_typed_error(site: Site, requester: Requester) -> None:
    r = await requester.request("sync", {}, sign_as=site.operators.signer("olga"))
    assert error_of(r) == ("cloud_unavailable", None)
    assert r["error"]["cause"] == "cloud_unavailable"


async def test_locks_and_lock_state(site: Site, requester: Requester) -> None:
    r = await requester.request("locks")
    assert [lock["lock_id"] for lock in r["data"]] == ["front"]
    assert r["data"][0]["name"] == "Front door" and r["data"][0]["driver"] == "sim"
    r = await requester.request("lock_state", {"lock_id": "front"})
    assert r["data"]["bolt"] == "locked" and r["data"]["battery_percent"] == 87
    assert r["data"]["connected"] is True
    r = await requester.request("lock_state", {"lock_id": "back"})
    assert error_of(r) == ("unknown_lock", None) and r["error"]["lock_id"] == "back"


async def test_credentials_listed_redacted(site: Site, requester: Requester) -> None:
    await load_one_code(site)
    r = await requester.request("credentials", {"lock_id": "front"})
    assert r["status"] == "ok"
    assert r["data"]["on_lock"] == [
        {
            "credential_id": "m1",
            "kind": "code",
            "window": None,
            "sync_state": "applied",
            "matches_wanted": True,
        }
    ]
    assert PIN not in json.dumps(r)


async def test_grant_sync_state(site: Site, requester: Requester) -> None:
    await load_one_code(site)
    r = await requester.request("grant_sync_state", {"grant_id": "g1"})
    assert r["status"] == "ok"
    (method,) = r["data"]["methods"]
    assert method["method_id"] == "m1" and method["mode"] == "code"
    assert [(x["lock_id"], x["state"]) for x in method["locks"]] == [("front", "applied")]
    assert PIN not in json.dumps(r)
    r = await requester.request("grant_sync_state", {"grant_id": "nope"})
    assert error_of(r) == ("not_found", None)


async def test_test_credential_is_a_dry_run_that_never_echoes_the_pin(
    site: Site, requester: Requester, caplog: pytest.LogCaptureFixture
) -> None:
    await load_one_code(site)
    caplog.set_level(logging.DEBUG)
    before = observe(site)
    ada = site.operators.signer("ada")
    r = await requester.request(
        "test_credential", {"lock_id": "front", "secret": Seal(PIN)}, sign_as=ada
    )
    assert r["status"] == "ok", r
    assert r["data"]["allow"] is True and r["data"]["reason"] == "valid"
    assert r["data"]["access_method_id"] == "m1" and r["data"]["dry_run"] is True
    r = await requester.request(
        "test_credential", {"lock_id": "front", "secret": Seal("000000")}, sign_as=ada
    )
    assert r["data"]["allow"] is False and r["data"]["reason"] == "unknown_credential"
    # Nothing moved at the lock; each dry run left one event (and the failure was counted).
    after = observe(site)
    assert (after.bolt, after.lock_log, after.puts) == (before.bolt, before.lock_log, before.puts)
    assert after.outbox == before.outbox + 2
    assert len(site.gw.store.lockouts.get("front").failures) == 1
    assert PIN not in json.dumps(r)
    assert not [rec for rec in caplog.records if PIN in rec.getMessage()]


async def test_repush_writes_again(site: Site, requester: Requester) -> None:
    await load_one_code(site)
    puts = sum(site.sim.put_counts.values())
    r = await requester.request(
        "repush", {"lock_id": "front"}, sign_as=site.operators.signer("olga")
    )
    assert r["data"] == {"lock_id": "front", "queued": True}
    async with asyncio.timeout(WAIT):
        await site.gw.locks["front"].wait_for(lambda: sum(site.sim.put_counts.values()) > puts)


async def test_commission_unsupported_by_the_driver_is_typed(
    site: Site, requester: Requester
) -> None:
    r = await requester.request(
        "commission",
        {"lock_id": "front", "pairing_secret": Seal("123-456")},
        sign_as=site.operators.signer("ada"),
    )
    assert error_of(r) == ("unsupported", None) and r["error"]["cause"] == "unsupported"


class PairableSim(SimDriver):
    """The simulator with a pairing flow, as the serial and BLE drivers have."""

    paired_with: list[str] = []  # noqa: RUF012 - the test reads it

    async def commission(self, pairing_secret: str) -> None:
        await self._ready()
        PairableSim.paired_with.append(pairing_secret)


async def test_commission_hands_the_secret_to_the_driver_only(
    tmp_path: Path, broker: Mosquitto, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    PairableSim.paired_with = []
    async with (
        running_site(tmp_path / "gw", broker, operators, driver=PairableSim) as site,
        Requester(broker_options(broker), site.topics, identity=site.identity) as r,
    ):
        resp = await r.request(
            "commission",
            {"lock_id": "front", "pairing_secret": Seal("pair-7781")},
            sign_as=operators.signer("ada"),
        )
    assert resp["status"] == "ok" and resp["data"] == {"lock_id": "front", "commissioned": True}
    assert PairableSim.paired_with == ["pair-7781"]
    assert "pair-7781" not in json.dumps(resp)
    assert not [rec for rec in caplog.records if "pair-7781" in rec.getMessage()]


async def test_lock_offline_and_timeout_are_typed_and_leave_the_bolt(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    olga = operators.signer("olga")
    async with (
        running_site(tmp_path / "gw", broker, operators, mqtt={"command_timeout_s": 0.3}) as site,
        Requester(broker_options(broker), site.topics, identity=site.identity) as r,
    ):
        site.sim.faults.offline = True
        resp = await r.request("unlock", {"lock_id": "front"}, sign_as=olga)
        assert error_of(resp) == ("lock_offline", None)
        assert resp["error"]["lock_id"] == "front"
        site.sim.faults.offline = False
        site.sim.faults.slow_seconds = 1.0
        resp = await r.request("unlock", {"lock_id": "front"}, sign_as=olga)
        assert error_of(resp) == ("timeout", None)
        assert site.bolt() is BoltState.LOCKED


async def test_remove_lock_stops_serving_and_clears_its_retained_state(
    site: Site, requester: Requester
) -> None:
    topic = site.topics.lock_state("front")
    async with Watcher(broker_options(site.broker), topic) as w:
        await w.until(lambda: bool(w.latest.get(topic)))
        r = await requester.request(
            "remove_lock", {"lock_id": "front"}, sign_as=site.operators.signer("ada")
        )
        assert r["data"] == {"lock_id": "front", "removed": True}
        await w.until(lambda: w.latest.get(topic) == b"")
    assert site.gw.locks == {}
    r = await requester.request("locks")
    assert r["data"] == []
    r = await requester.request(
        "unlock", {"lock_id": "front"}, sign_as=site.operators.signer("olga")
    )
    assert error_of(r) == ("unknown_lock", None)


async def test_log_level(site: Site, requester: Requester) -> None:
    target = logging.getLogger("gateway.mqtt.testing")
    target.setLevel(logging.WARNING)
    r = await requester.request(
        "log_level",
        {"level": "DEBUG", "logger": "gateway.mqtt.testing"},
        sign_as=site.operators.signer("ada"),
    )
    assert r["data"] == {"level": "DEBUG", "logger": "gateway.mqtt.testing"}
    assert target.level == logging.DEBUG
    r = await requester.raw("log_level", b'{"args": {"level": "LOUD"}}')
    assert error_of(r) == ("bad_payload", "args.level")


# --- the request/response plumbing ----------------------------------------------------------
async def test_v311_clients_match_by_transaction_on_the_default_topic(site: Site) -> None:
    async with Requester(broker_options(site.broker), site.topics, v5=False) as r:
        resp = await r.request("status", transaction="v3-1")
        assert resp["status"] == "ok" and resp["transaction"] == "v3-1"


async def test_a_reply_topic_into_the_gateways_own_requests_is_not_used(site: Site) -> None:
    """A v5 response topic pointing at the gateway's request topics would loop: the answer
    goes to the default response topic instead."""
    default = site.topics.response("status")
    async with (
        Requester(broker_options(site.broker), site.topics, identity=site.identity) as r,
        Watcher(broker_options(site.broker), f"{site.topics.root}/#") as w,
    ):
        r.reply_to = site.topics.request("status")
        resp = await r.raw("status", b'{"transaction": "loop?"}')
        assert resp["transaction"] == "loop?"
        await w.until(lambda: default in w.latest)
        requests = [t for t, _, _ in w.history if t.startswith(site.topics.request_prefix)]
        assert requests == [site.topics.request("status")]  # only ours, no answer in there


async def test_too_many_commands_at_once_are_told_busy(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with running_site(
        tmp_path / "gw", broker, operators, mqtt={"max_concurrent_commands": 1}
    ) as site:
        site.sim.faults.slow_seconds = 0.3
        async with Requester(broker_options(broker), site.topics, identity=site.identity) as r:
            slow, fast = await asyncio.gather(
                r.request("lock_state", {"lock_id": "front"}), r.request("status")
            )
        assert slow["status"] == "ok"
        assert error_of(fast) == ("busy", None)


@pytest.fixture
async def fakecloud_site(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> AsyncIterator[Site]:
    import fakecloud  # a dev dependency of the project: never skipped

    seed = {
        "spaces": [{"space_id": "space-a", "name": "Main"}],
        "user_identities": [{"user_identity_id": "u1", "full_name": "Jane Doe"}],
        "access_grants": [
            {
                "access_grant_id": "g-cloud",
                "user_identity_id": "u1",
                "space_ids": ["space-a"],
                "starts_in_s": -60,
                "requested_access_methods": [{"mode": "code", "code": "7351"}],
            }
        ],
    }
    async with (
        fakecloud.FakeCloudServer(seed=seed) as cloud,
        running_site(
            tmp_path / "gw", broker, operators, cloud_url=cloud.url, cloud_key=cloud.api_key
        ) as site,
    ):
        yield site


async def test_sync_now_against_the_fake_cloud(fakecloud_site: Site) -> None:
    site = fakecloud_site
    async with Requester(broker_options(site.broker), site.topics, identity=site.identity) as r:
        resp = await r.request("sync", {"full": True}, sign_as=site.operators.signer("olga"))
        assert resp["status"] == "ok", resp
        assert resp["data"]["kind"] == "full" and resp["data"]["grants"] == 1
        status = await r.request("status")
        assert status["data"]["cloud"]["reachable"] is True
        async with asyncio.timeout(WAIT):
            await site.gw.locks["front"].wait_for(
                lambda: site.gw.store.sync_states.counts("front")["applied"] == 1
            )
        state = await r.request("grant_sync_state", {"grant_id": "g-cloud"})
        assert [lk["state"] for m in state["data"]["methods"] for lk in m["locks"]] == ["applied"]
        assert "7351" not in json.dumps(state)


async def test_signed_reads_can_be_required(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with (
        running_site(tmp_path / "gw", broker, operators, mqtt={"require_signed_reads": True}) as s,
        Requester(broker_options(broker), s.topics) as r,
    ):
        assert error_of(await r.request("status")) == ("unauthorised", None)
        assert (await r.request("status", sign_as=operators.signer("vera")))["status"] == "ok"
        r2 = await r.request("unlock", {"lock_id": "front"}, sign_as=operators.signer("vera"))
        assert error_of(r2) == ("forbidden", None)


async def test_sync_issues_are_named_in_status_grant_sync_state_and_the_log(
    tmp_path: Path, broker: Mosquitto, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    """A grant whose window is backwards and a code method with no code: each is shown with
    its grant, its reason and a sentence, in ``status`` and ``grant_sync_state``, and logged
    once at WARNING; a secret of the grant beside them is never shown."""
    import fakecloud

    seed = {"spaces": [{"space_id": "space-a", "name": "Main"}]}
    async with fakecloud.FakeCloudServer(seed=seed) as cloud:
        await _sync_issues_shown(tmp_path, broker, operators, caplog, cloud)


async def _sync_issues_shown(
    tmp_path: Path,
    broker: Mosquitto,
    operators: Operators,
    caplog: pytest.LogCaptureFixture,
    cloud: Any,
) -> None:
    cloud.state.inject_raw(
        "access_methods",
        {"access_method_id": "m-empty", "mode": "code", "code": None, "is_issued": True},
        access_grant_id="g-bad",
    )
    cloud.state.inject_raw(
        "access_methods",
        {"access_method_id": "m-back", "mode": "code", "code": "777888"},
        access_grant_id="g-bad",
    )
    cloud.state.inject_raw(
        "access_grants",
        {
            "access_grant_id": "g-bad",
            "space_ids": ["space-a"],
            "starts_at": "2026-03-02T00:00:00Z",
            "ends_at": "2026-03-01T00:00:00Z",
            "access_method_ids": ["m-empty", "m-back"],
        },
    )
    olga = operators.signer("olga")
    with caplog.at_level(logging.DEBUG, logger="gateway.sync_issues"):
        async with (
            running_site(
                tmp_path / "gw", broker, operators, cloud_url=cloud.url, cloud_key=cloud.api_key
            ) as site,
            Requester(broker_options(broker), site.topics, identity=site.identity) as r,
        ):
            synced = await r.request("sync", {"full": True}, sign_as=olga)
            assert synced["status"] == "ok", synced
            assert synced["data"]["issues"] == 2
            status = (await r.request("status"))["data"]
            state = (await r.request("grant_sync_state", {"grant_id": "g-bad"}))["data"]
            again = await r.request("sync", {"full": True}, sign_as=olga)
            assert again["status"] == "ok", again
    by_id = {i["object_id"]: i for i in status["sync_issues"]}
    assert set(by_id) == {"g-bad", "m-empty"}
    grant_issue, method_issue = by_id["g-bad"], by_id["m-empty"]
    assert grant_issue["reason"] == "ends_at is not after starts_at"
    assert grant_issue["grant_id"] == "g-bad" and grant_issue["method_id"] is None
    assert grant_issue["message"].startswith("Grant g-bad cannot be used as the cloud sent it")
    assert method_issue["reason"] == "code access method has no code"
    assert method_issue["grant_id"] == "g-bad" and method_issue["method_id"] == "m-empty"
    assert "Access method m-empty of grant g-bad cannot go onto any lock" in method_issue["message"]
    assert sorted(i["object_id"] for i in state["sync_issues"]) == ["g-bad", "m-empty"]
    assert synced["data"]["sync_issues"] == status["sync_issues"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # the second sync repeats them at DEBUG only
    assert any("m-empty of grant g-bad" in w for w in warnings)
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) >= 2  # the second sync (and any poll between) at DEBUG
    shown = json.dumps([status, state, synced]) + "\n".join(caplog.messages)
    assert "777888" not in shown
