"""Access events: from the outbox to the broker at QoS 1, in order, with stable ids, none lost
while the broker is away."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lockgate_sim.broker import Mosquitto

from drivers.base import CredentialKind
from gateway.events import AccessEvent
from gateway.mqtt.publisher import EventPublisher
from gateway.secrets import SecretRef
from gateway.store.store import Store
from tests.core.factories import code, grant
from tests.mqtt.harness import (
    WAIT,
    Consumer,
    Operators,
    Requester,
    Site,
    Watcher,
    broker_options,
    running,
    running_site,
)

PIN = "135790"


def load_pin(site: Site) -> None:
    now = datetime.now(UTC)
    site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", PIN)])


async def test_events_are_published_and_leave_the_outbox(site: Site) -> None:
    load_pin(site)
    opts = broker_options(site.broker)
    lock_state = site.topics.lock_state("front")
    consumer = Consumer(opts, site.topics.events, identifier="c-live")
    async with running(consumer.run(), "consumer"), Watcher(opts, lock_state) as w:
        await consumer.subscribed()
        allowed = site.gw.decide(CredentialKind.CODE, PIN.encode(), "front", dry_run=False)
        denied = site.gw.decide(CredentialKind.CODE, b"999999", "front", dry_run=False)
        await consumer.until_count(2)
        # the lock's "last access" is updated once the event has left the outbox
        await w.until(
            lambda: (w.json(lock_state)["last_access"] or {}).get("event_id") == denied.event_id
        )
    assert site.gw.store.outbox.count_pending() == 0
    first, second = consumer.events
    assert first["event_id"] == allowed.event_id and first["kind"] == "access_allowed"
    assert first["reason"] == "valid" and first["access_method_id"] == "m1"
    assert first["access_grant_id"] == "g1" and first["gateway_id"] == "gw-test"
    assert second["event_id"] == denied.event_id and second["kind"] == "access_denied"
    assert second["reason"] == "unknown_credential"
    assert PIN not in json.dumps(consumer.events) and "999999" not in json.dumps(consumer.events)
    assert w.json(lock_state)["last_access"]["summary"] == "denied: unknown_credential"


async def test_events_from_the_locks_own_log_are_published(site: Site) -> None:
    """An unlock by command is in the lock's audit log; the reconciler pulls it into the
    outbox and the publisher sends it, with the ``<lock>:<seq>`` id."""
    consumer = Consumer(broker_options(site.broker), site.topics.events, identifier="c-lock")
    async with (
        running(consumer.run(), "consumer"),
        Requester(broker_options(site.broker), site.topics, identity=site.identity) as r,
    ):
        await consumer.subscribed()
        await r.request("unlock", {"lock_id": "front"}, sign_as=site.operators.signer("olga"))
        site.gw.locks["front"].events_waiting()
        await consumer.until_count(1)
    (event,) = consumer.events
    assert event["kind"] == "unlocked" and event["source"] == "lock"
    assert event["event_id"].startswith("front:")


async def test_broker_outage_loses_nothing(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    """ "The broker is stopped for a minute while 1,000 access events happen": here the broker
    is stopped, the 1,000 events happen (they reach the outbox on disk), the broker restarts
    on the same port with its persistence, and delivery is awaited. The minute's wait is
    replaced by the gateway's reconnection being held back until the test lets it go (its
    reconnect sleep is injected), so nothing depends on how long the outage lasts."""
    may_reconnect = asyncio.Event()
    may_reconnect.set()

    async def held_sleep(delay: float) -> None:
        await asyncio.sleep(min(delay, 0.01))
        await may_reconnect.wait()

    opts = broker_options(broker)
    async with running_site(tmp_path / "gw", broker, operators, sleep=held_sleep) as site:
        load_pin(site)
        outbox = site.gw.store.outbox
        consumer = Consumer(opts, site.topics.events, identifier="fleet-backend")
        async with running(consumer.run(), "consumer"):
            await consumer.subscribed()
            site.gw.decide(CredentialKind.CODE, PIN.encode(), "front", dry_run=False)
            await consumer.until_count(1)  # the path works before the outage

            may_reconnect.clear()
            await broker.stop()
            async with asyncio.timeout(WAIT):
                await site.plane.offline.wait()
            for i in range(1000):
                secret = PIN if i % 3 else f"{i:06d}"  # allowed and denied, interleaved
                site.gw.decide(CredentialKind.CODE, secret.encode(), "front", dry_run=False)
            assert outbox.count_pending() == 1000  # on disk, not delivered

            await broker.start()  # same port, same persistence directory
            avail = site.topics.availability
            async with (
                Watcher(opts, avail) as w,
                Requester(opts, site.topics, identity=site.identity) as r,
            ):
                await w.until(lambda: avail in w.latest)
                assert w.latest[avail] == b"offline"  # the will, kept by the broker
                # A request made while the gateway is away waits in its persistent session.
                pending_status = asyncio.create_task(r.request("status"), name="status")
                may_reconnect.set()
                await w.until(lambda: w.latest.get(avail) == b"online")
                status = await pending_status
                assert status["status"] == "ok"
            await consumer.until_count(1001, within=30)

        expected = [e.event_id for e in outbox.entries()]
        got = [e["event_id"] for e in consumer.events]
        assert len(expected) == 1001
        assert got == expected  # all of them, in order, none twice
        assert outbox.count_pending() == 0
        assert site.plane.connections == 2  # reconnected, not restarted
        assert consumer.sessions == 2
        # What arrived says what was decided, event for event: the allowed PINs and the
        # wrong guesses (which soon lock the keypad out, so later allowed PINs are refused).
        during = consumer.events[1:]
        decided = [e.payload for e in outbox.entries()][1:]
        assert [(e["kind"], e["reason"]) for e in during] == [
            (p["kind"], p["reason"]) for p in decided
        ]
        assert {e["kind"] for e in during} == {"access_allowed", "access_denied"}
        assert "unknown_credential" in {e["reason"] for e in during}
        assert PIN not in json.dumps(consumer.events)


class BrokerGoneError(Exception):
    pass


async def test_a_connection_lost_mid_batch_marks_only_the_acknowledged_prefix(
    tmp_path: Path,
) -> None:
    """No broker needed: the publisher against a publish that fails after three PUBACKs."""
    with Store.open(tmp_path / "db", SecretRef(file=tmp_path / "key")) as store:
        t = datetime(2026, 3, 1, tzinfo=UTC)
        store.outbox.add(
            [AccessEvent(f"e{i}", t, "access_denied", lock_id="front") for i in range(10)]
        )
        sent: list[str] = []

        async def flaky(topic: str, body: bytes) -> None:
            if len(sent) == 3:
                raise BrokerGoneError
            sent.append(json.loads(body)["event_id"])

        publisher = EventPublisher(store.outbox, "t/events", "gw", lambda: t, batch=5)
        with pytest.raises(BrokerGoneError):
            await publisher.run(flaky)
        assert [e.event_id for e in store.outbox.pending(100)] == [f"e{i}" for i in range(3, 10)]

        async def puback_lost_on_the_last(topic: str, body: bytes) -> None:
            sent.append(json.loads(body)["event_id"])  # the broker has it ...
            if len(sent) == 10:
                raise BrokerGoneError  # ... but its PUBACK never arrives

        with pytest.raises(BrokerGoneError):
            await publisher.run(puback_lost_on_the_last)
        assert sent == [f"e{i}" for i in range(10)]  # in order, from the first unacknowledged
        # Unacknowledged means not delivered: e9 goes again on the next connection (a
        # duplicate for the consumer, who drops it by event_id), never lost.
        assert [e.event_id for e in store.outbox.pending(100)] == ["e9"]


async def test_the_last_access_is_known_again_after_a_restart(site: Site) -> None:
    """The state a restarted gateway publishes starts from the outbox, not from 'none'."""
    from gateway.mqtt.state import StateView

    denied = site.gw.decide(CredentialKind.CODE, b"999999", "front", dry_run=False)
    fresh = StateView(site.gw, site.topics)  # what the plane builds at start
    last = fresh.lock_state("front", site.gw.locks["front"])["last_access"]
    assert last is not None and last["event_id"] == denied.event_id
    assert last["summary"] == "denied: unknown_credential"
