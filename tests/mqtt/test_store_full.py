"""A full disk shows in the MQTT status reply and the retained gateway state, and clears by
itself once there is room again (a real tmpfs: see tests/fullfs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lockgate_sim.broker import Mosquitto

from drivers.base import BoltState, CredentialKind
from tests.fullfs import fill, shrink_wal, small_tmpfs
from tests.mqtt.harness import Operators, Requester, Watcher, broker_options, running_site


def store_of(doc: Any) -> dict[str, Any]:
    return dict(doc["store"]) if doc else {}


async def test_store_full_in_status_and_retained_state(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    with small_tmpfs(tmp_path / "state", "8m") as disk:
        async with (
            running_site(disk / "gw", broker, operators) as site,
            Requester(broker_options(broker), site.topics, identity=site.identity) as requester,
            Watcher(broker_options(broker), site.topics.state) as watcher,
        ):
            topic = site.topics.state
            await watcher.until(lambda: store_of(watcher.json(topic)).get("error_code") is None)
            shrink_wal(site.gw.store.db.conn)
            filler = fill(disk)

            decision = site.gw.decide(CredentialKind.CODE, b"987654", "front", dry_run=False)
            assert decision.reason == "unknown_credential" and decision.event_id is not None

            reply = await requester.request("status")
            assert reply["status"] == "ok"
            store = reply["data"]["store"]
            assert store["error_code"] == "store_full"
            assert store["full_since"] is not None and store["unsaved_events"] == 1
            await watcher.until(
                lambda: store_of(watcher.json(topic)).get("error_code") == "store_full"
            )

            filler.unlink()  # the keeper finds room within its first retries (1 s, 2 s, ...)
            await watcher.until(
                lambda: store_of(watcher.json(topic))
                == {"error_code": None, "full_since": None, "unsaved_events": 0},
                within=10,
            )
            recorded = {e.event_id for e in site.gw.store.outbox.entries()}
            assert decision.event_id in recorded


async def test_an_unlock_whose_replay_floor_cannot_be_written_is_refused(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    """The signer's replay floor goes to disk before the door moves: with no room for it,
    the unlock is refused (``store_full``) and the bolt stays as it was; once there is room,
    a new unlock goes through."""
    olga = operators.signer("olga")
    with small_tmpfs(tmp_path / "state", "8m") as disk:
        async with (
            running_site(disk / "gw", broker, operators) as site,
            Requester(broker_options(broker), site.topics, identity=site.identity) as requester,
        ):
            assert site.bolt() is BoltState.LOCKED
            shrink_wal(site.gw.store.db.conn)
            filler = fill(disk)
            reply = await requester.request("unlock", {"lock_id": "front"}, sign_as=olga)
            assert reply["status"] == "error" and reply["error"]["code"] == "store_full", reply
            assert site.bolt() is BoltState.LOCKED
            assert site.gw.store.meta.get("mqtt.auth_floor.olga") is None
            filler.unlink()
            reply = await requester.request("unlock", {"lock_id": "front"}, sign_as=olga)
            assert reply["status"] == "ok", reply
            assert site.bolt() is BoltState.UNLOCKED
            assert site.gw.store.meta.get("mqtt.auth_floor.olga") is not None
