"""Topic layout and the checks on names and reply topics (no broker)."""

from __future__ import annotations

import pytest

from gateway.mqtt.payloads import CommandError, ErrorCode, Response
from gateway.mqtt.topics import Topics, ha_safe


def test_layout() -> None:
    t = Topics("lockgate", "site-1")
    assert t.availability == "lockgate/site-1/availability"
    assert t.lock_state("front") == "lockgate/site-1/locks/front/state"
    assert t.request("unlock") == "lockgate/site-1/request/unlock"
    assert t.command_of("lockgate/site-1/request/unlock") == "unlock"
    assert t.command_of("lockgate/site-1/request/unlock/x") is None
    assert t.command_of("lockgate/site-2/request/unlock") is None
    assert t.lock_of_ha_set("lockgate/site-1/ha/front/set") == "front"
    assert t.ha_config("sensor", "front.door_battery") == (
        "homeassistant/sensor/lockgate_site-1/front_door_battery/config"
    )
    assert ha_safe("a.b c") == "a_b_c"


@pytest.mark.parametrize("base", ["", "a/#", "a/+/b", "a//b", "/a", "a/"])
def test_bad_base_topics_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base_topic"):
        Topics(base, "gw")


@pytest.mark.parametrize(
    ("topic", "usable"),
    [
        ("lockgate/site-1/response/ctl-1", True),
        ("elsewhere/replies", True),
        ("lockgate/site-1/request/status", False),
        ("lockgate/site-1/ha/front/set", False),
        ("lockgate/site-1/response/#", False),
        ("a/+/b", False),
        ("", False),
    ],
)
def test_reply_topics(topic: str, usable: bool) -> None:
    assert Topics("lockgate", "site-1").usable_reply_topic(topic) is usable


def test_response_shape() -> None:
    ok = Response.ok({"a": 1}, "t").as_dict()
    assert ok == {"status": "ok", "data": {"a": 1}, "error": None, "transaction": "t"}
    err = Response.fail(CommandError(ErrorCode.BAD_PAYLOAD, "x", field="args.a")).as_dict()
    assert err == {
        "status": "error",
        "data": None,
        "error": {"code": "bad_payload", "message": "x", "field": "args.a"},
    }
