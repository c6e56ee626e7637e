"""A 50,000-grant full sync does not take the management plane down.

The real daemon (``lockgate run``) syncs 50,000 grants from the fake cloud while an operator's
tool asks ``status`` over a real Mosquitto again and again. Every request is answered while
the sync runs, and the gateway keeps its one broker session throughout: its last will
(``offline`` on the availability topic) is never published, which the broker does when a
client misses its keepalive (here 5 s, the least the config allows).
"""

from __future__ import annotations

from pathlib import Path

from lockgate_sim.broker import Mosquitto

from fakecloud.server import FakeCloudServer
from gateway.mqtt.topics import Topics
from tests.e2e.daemon_proc import DaemonProcess
from tests.e2e.site import daemon_toml
from tests.mqtt.harness import Requester, Watcher, broker_options, write_operator_keys

GRANTS = 50_000
SPACE = "space-big"


def seed() -> dict[str, object]:
    return {
        "spaces": [{"space_id": SPACE, "name": "Big"}],
        "user_identities": [
            {"user_identity_id": f"u{i}", "full_name": f"User {i}"} for i in range(100)
        ],
        "access_grants": [
            {
                "access_grant_id": f"g{i:05d}",
                "user_identity_id": f"u{i % 100}",
                "space_ids": [SPACE],
                "starts_in_s": -60,
                "requested_access_methods": [{"mode": "code", "code": f"{i:06d}"}],
            }
            for i in range(GRANTS)
        ],
    }


def config(tmp: Path, cloud: FakeCloudServer, broker: Mosquitto, operators: Path) -> Path:
    return daemon_toml(
        tmp,
        cloud.url,
        cloud.api_key,
        gateway_id="big-site",
        poll_interval_s=3600,
        cloud_extra="request_timeout_s = 60",
        tail=f"""[mqtt]
enabled = true
host = "{broker.host}"
port = {broker.port}
operator_keys = "{operators}"
keepalive_s = 5
[[locks]]
id = "front"
space_ids = ["{SPACE}"]
[locks.driver]
type = "sim"
state_file = "{tmp / "front.flash.json"}"
slots = 500
""",
    )


async def test_status_answered_and_session_kept_during_a_50k_grant_sync(tmp_path: Path) -> None:
    operators = write_operator_keys(tmp_path)
    topics = Topics("lockgate", "big-site")
    async with (
        Mosquitto(tmp_path / "broker") as broker,
        FakeCloudServer(seed=seed()) as cloud,
        Watcher(broker_options(broker), topics.availability) as watcher,
        DaemonProcess(config(tmp_path, cloud, broker, operators.path)) as daemon,
    ):
        await watcher.until(lambda: watcher.latest.get(topics.availability) == b"online", 30)
        async with Requester(broker_options(broker), topics) as requester:
            answered_during_sync = 0
            while daemon.count(r"full sync: 50000 grants") == 0:
                status = await requester.request("status")  # each bounded by the harness WAIT
                assert status["status"] == "ok", status
                if daemon.count(r"full sync: 50000 grants") == 0:
                    answered_during_sync += 1
            # The sync was long enough to ask many times, and every ask was answered.
            assert answered_during_sync >= 3, answered_during_sync
            after = await requester.request("status")
            assert after["data"]["cloud"]["reachable"] is True, after
        seen = [body for topic, body, _ in watcher.history if topic == topics.availability]
        assert b"offline" not in seen, seen
        assert daemon.count(r"MQTT broker .*reconnecting") == 0, daemon.lines[-20:]
