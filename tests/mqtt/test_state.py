"""Retained availability and state, Home Assistant discovery and its lock entity."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lockgate_sim.broker import Mosquitto

from drivers.base import BoltState, CredentialKind
from tests.core.factories import code, grant
from tests.mqtt import ha_schema
from tests.mqtt.harness import (
    WAIT,
    Operators,
    Requester,
    Site,
    Watcher,
    broker_options,
    running_site,
)


async def test_availability_and_state_are_retained(site: Site) -> None:
    t = site.topics
    async with Watcher(
        broker_options(site.broker), t.availability, t.state, t.lock_state("front")
    ) as w:
        await w.until(lambda: len(w.latest) == 3)
        assert all(retained for _, _, retained in w.history)
        assert w.latest[t.availability] == b"online"
        state = w.json(t.state)
        assert state["gateway_id"] == "gw-test"
        assert state["cloud"]["reachable"] is False
        assert state["clock"]["trusted"] is True
        lock = w.json(t.lock_state("front"))
        assert lock["connected"] is True and lock["driver"] == "sim"
        await w.until(lambda: w.json(t.lock_state("front"))["bolt"] == "locked")
        assert w.json(t.lock_state("front"))["battery_percent"] == 87


async def test_lock_state_follows_commands_credentials_and_access(
    site: Site, requester: Requester
) -> None:
    topic = site.topics.lock_state("front")
    async with Watcher(broker_options(site.broker), topic) as w:
        await requester.request(
            "unlock", {"lock_id": "front"}, sign_as=site.operators.signer("olga")
        )
        await w.until(lambda: w.json(topic)["bolt"] == "unlocked")
        now = datetime.now(UTC)
        site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", "2468")])
        await w.until(lambda: w.json(topic)["credentials"]["applied"] == 1)
        decision = site.gw.decide(CredentialKind.CODE, b"2468", "front", dry_run=False)
        assert decision.allow
        await w.until(
            lambda: (w.json(topic)["last_access"] or {}).get("summary") == "allowed: valid"
        )
        last = w.json(topic)["last_access"]
        assert last["event_id"] == decision.event_id and last["access_method_id"] == "m1"
        # the PIN as a value of its own, not four digits of a timestamp or an event id
        assert re.search(r"(?<![0-9a-f])2468(?![0-9a-f])", json.dumps(w.json(topic))) is None


async def test_a_pass_of_one_lock_rebuilds_its_document_and_the_gateway_totals(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    # No periodic rebuild in this test (an hour): what the documents show comes from the
    # rebuilds a lock's pass asks for, which rebuild that lock's document and the gateway's
    # (its totals from each lock's last counts), not every lock's.
    drivers = {"front": {"type": "sim"}, "back": {"type": "sim"}}
    async with running_site(
        tmp_path / "gw", broker, operators, mqtt={"state_interval_s": 3600},
        lock_drivers=drivers,
    ) as site:
        t = site.topics
        front, back = t.lock_state("front"), t.lock_state("back")
        async with Watcher(broker_options(site.broker), t.state, front, back) as w:
            await w.until(lambda: len(w.latest) == 3)
            now = datetime.now(UTC)
            site.load([grant("g1", start=now - timedelta(hours=1))], [code("m1", "g1", "2468")])
            await w.until(
                lambda: all(w.json(x)["credentials"].get("applied") == 1 for x in (front, back))
            )
            await w.until(lambda: w.json(t.state)["counts"]["credentials"].get("applied") == 2)
        view = site.plane.view
        view.changed("front")
        assert view.stale() == {"front"}
        assert set(view.documents({"front"})) == {t.state, front}
        view.changed("front")
        view.changed()
        assert view.stale() is None
        assert view.stale() == set()
        assert not view.dirty.is_set()


async def test_a_timed_unlock_shows_locked_again_when_the_hold_is_over(
    site: Site, requester: Requester
) -> None:
    topic = site.topics.lock_state("front")
    async with Watcher(broker_options(site.broker), topic) as w:
        r = await requester.request(
            "unlock", {"lock_id": "front", "hold_seconds": 1}, sign_as=site.operators.signer("olga")
        )
        assert r["data"]["bolt"] == "unlocked"
        await w.until(lambda: w.json(topic)["bolt"] == "unlocked")
        await w.until(lambda: w.json(topic)["bolt"] == "locked")  # the lock relocked itself


async def test_clean_shutdown_says_offline(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    async with running_site(tmp_path / "gw", broker, operators) as site:
        avail = site.topics.availability
    async with Watcher(broker_options(broker), avail) as w:
        await w.until(lambda: avail in w.latest)
        assert w.latest[avail] == b"offline"


async def test_last_will_says_offline_when_the_gateway_vanishes(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    """The broker publishes the will when the gateway's connection dies without a goodbye."""
    async with running_site(tmp_path / "gw", broker, operators, mqtt={"keepalive_s": 5}) as site:
        avail = site.topics.availability
        async with Watcher(broker_options(broker), avail) as w:
            await w.until(lambda: w.latest.get(avail) == b"online")
            client = site.plane._client
            assert client is not None
            sock = client._client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)  # the connection dies without a DISCONNECT
            await w.until(lambda: w.latest.get(avail) == b"offline")
            await w.until(lambda: w.latest.get(avail) == b"online")  # and back by itself
        assert site.plane.connections == 2


# --- Home Assistant -------------------------------------------------------------------------
HA = {"homeassistant_discovery": True}


async def test_discovery_documents(tmp_path: Path, broker: Mosquitto, operators: Operators) -> None:
    async with running_site(tmp_path / "gw", broker, operators, mqtt=HA) as site:
        async with Watcher(broker_options(broker), "homeassistant/#") as w:
            await w.until(lambda: len(w.latest) == 4)
        t = site.topics
        lock = json.loads(w.latest["homeassistant/lock/lockgate_gw-test/front/config"])
        assert lock["command_topic"] == t.ha_set("front")
        assert lock["state_topic"] == t.lock_state("front")
        assert lock["payload_reset"] == "None"
        assert lock["unique_id"] == "lockgate_gw-test_front_lock"
        assert lock["availability_mode"] == "all"
        assert [a["topic"] for a in lock["availability"]] == [t.availability, t.lock_state("front")]
        assert lock["device"]["via_device"] == "lockgate_gw-test"
        battery = json.loads(w.latest["homeassistant/sensor/lockgate_gw-test/front_battery/config"])
        assert battery["device_class"] == "battery" and battery["unit_of_measurement"] == "%"
        last = json.loads(
            w.latest["homeassistant/sensor/lockgate_gw-test/front_last_access/config"]
        )
        assert last["json_attributes_topic"] == t.lock_state("front")
        assert "homeassistant/binary_sensor/lockgate_gw-test/gateway/config" in w.latest
        # Every key is one Home Assistant's discovery schema knows (it drops unknown ones).
        for topic, body in w.latest.items():
            platform = topic.split("/")[1]
            assert ha_schema.unknown_keys(platform, json.loads(body)) == set(), topic
        # A bolt Lockgate cannot read resets the entity to unknown instead of leaving it stale.
        seen = [{"bolt": "locked"}, {"bolt": "unknown"}]
        assert ha_schema.lock_state_after(lock, seen[:1]) == "locked"
        assert ha_schema.lock_state_after(lock, seen) == "unknown"
        assert ha_schema.lock_state_after(lock, [{"bolt": "jammed"}]) == "jammed"
        assert ha_schema.lock_state_after(lock, [{"bolt": "unlocked"}]) == "unlocked"
        assert ha_schema.render(battery["value_template"], {"battery_percent": 80}) == "80"


async def test_discovery_is_opt_in(site: Site) -> None:
    async with Watcher(broker_options(site.broker), "homeassistant/#", site.topics.state) as w:
        await w.until(lambda: site.topics.state in w.latest)
        assert [t for t in w.latest if t.startswith("homeassistant/")] == []


async def test_home_assistant_lock_honoured_unlock_refused_by_default(
    tmp_path: Path, broker: Mosquitto, operators: Operators, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_site(tmp_path / "gw", broker, operators, mqtt=HA) as site:
        opts = broker_options(broker)
        topic = site.topics.lock_state("front")
        async with (
            Requester(opts, site.topics, identity=site.identity) as r,
            Watcher(opts, topic) as w,
        ):
            await r.request("unlock", {"lock_id": "front"}, sign_as=operators.signer("olga"))
            await w.until(lambda: w.json(topic)["bolt"] == "unlocked")
            await r.publish(site.topics.ha_set("front"), b"LOCK")
            await w.until(lambda: w.json(topic)["bolt"] == "locked")
            await r.publish(site.topics.ha_set("front"), b"UNLOCK")
            refused = "UNLOCK from Home Assistant refused"
            async with asyncio.timeout(WAIT):
                while not any(refused in rec.getMessage() for rec in caplog.records):
                    await r.request("status")  # a round trip: the HA task ran before it
            assert site.bolt() is BoltState.LOCKED


async def test_home_assistant_unlock_when_allowed(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    cfg = {**HA, "homeassistant_unlock": True}
    async with running_site(tmp_path / "gw", broker, operators, mqtt=cfg) as site:
        opts = broker_options(broker)
        topic = site.topics.lock_state("front")
        async with (
            Requester(opts, site.topics, identity=site.identity) as r,
            Watcher(opts, topic) as w,
        ):
            await r.publish(site.topics.ha_set("front"), b"UNLOCK")
            await w.until(lambda: bool(w.latest.get(topic)) and w.json(topic)["bolt"] == "unlocked")
        assert site.bolt() is BoltState.UNLOCKED


@pytest.fixture(autouse=True)
def _quiet_paho(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
