"""Topic names: one place that knows the layout under ``<base_topic>/<gateway_id>``.

::

    <root>/availability              retained "online" / "offline" (the last will)
    <root>/state                     retained gateway state (JSON)
    <root>/locks/<lock>/state        retained per-lock state (JSON)
    <root>/events                    access events, QoS 1, in outbox order
    <root>/request/<command>         commands in
    <root>/response/<command>        answers, unless the request named a v5 response topic
    <root>/ha/<lock>/set             Home Assistant's LOCK / UNLOCK (only with discovery on)
    <ha_prefix>/<component>/lockgate_<gateway>/<object>/config   discovery, retained

``<root>`` is ``<base_topic>/<gateway_id>``. Nothing here talks to a broker.
"""

from __future__ import annotations

import re

_LEVEL = re.compile(r"^[^/#+\x00]+$")
_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _check_topic_prefix(value: str, what: str) -> str:
    levels = value.split("/")
    if not value or any(not _LEVEL.match(level) for level in levels):
        raise ValueError(f"{what} {value!r} must be non-empty levels without '#', '+' or '//'")
    return value


def ha_safe(value: str) -> str:
    """Home Assistant's node and object ids allow ``[A-Za-z0-9_-]`` only."""
    return _NODE_UNSAFE.sub("_", value)


class Topics:
    def __init__(self, base_topic: str, gateway_id: str, ha_prefix: str = "homeassistant") -> None:
        _check_topic_prefix(base_topic, "base_topic")
        _check_topic_prefix(gateway_id, "gateway_id")
        _check_topic_prefix(ha_prefix, "homeassistant_prefix")
        self.gateway_id = gateway_id
        self.root = f"{base_topic}/{gateway_id}"
        self.ha_prefix = ha_prefix
        self.availability = f"{self.root}/availability"
        self.state = f"{self.root}/state"
        self.events = f"{self.root}/events"
        self.request_prefix = f"{self.root}/request/"
        self.response_prefix = f"{self.root}/response/"
        self.request_filter = f"{self.request_prefix}+"
        self.ha_filter = f"{self.root}/ha/+/set"
        self.ha_node = f"lockgate_{ha_safe(gateway_id)}"

    # --- per lock ----------------------------------------------------------------------------
    def lock_state(self, lock_id: str) -> str:
        return f"{self.root}/locks/{lock_id}/state"

    def ha_set(self, lock_id: str) -> str:
        return f"{self.root}/ha/{lock_id}/set"

    def ha_config(self, component: str, object_id: str) -> str:
        return f"{self.ha_prefix}/{component}/{self.ha_node}/{ha_safe(object_id)}/config"

    # --- commands ----------------------------------------------------------------------------
    def request(self, command: str) -> str:
        return f"{self.request_prefix}{command}"

    def response(self, command: str) -> str:
        return f"{self.response_prefix}{command}"

    def command_of(self, topic: str) -> str | None:
        """The command a request topic names, or ``None`` when it is not a request topic."""
        if not topic.startswith(self.request_prefix):
            return None
        rest = topic[len(self.request_prefix) :]
        return rest if rest and "/" not in rest else None

    def lock_of_ha_set(self, topic: str) -> str | None:
        prefix, suffix = f"{self.root}/ha/", "/set"
        if not (topic.startswith(prefix) and topic.endswith(suffix)):
            return None
        lock = topic[len(prefix) : -len(suffix)]
        return lock if lock and "/" not in lock else None

    def usable_reply_topic(self, topic: str) -> bool:
        """A v5 response topic the gateway will publish to: a plain topic name (no wildcards),
        and never one of its own request or HA command topics (that would loop)."""
        if not topic or len(topic) > 512 or "#" in topic or "+" in topic or "\x00" in topic:
            return False
        own_inputs = (self.request_prefix, f"{self.root}/ha/")
        return not topic.startswith(own_inputs)


def mosquitto_acl(base_topic: str = "lockgate", ha_prefix: str = "homeassistant") -> str:
    """The ACL documented in docs/mqtt.md: each gateway (MQTT username = gateway id) confined to
    its own topics; operators may command every gateway and read everything; Home Assistant
    reads state and writes only the HA command topics. Tested against a real Mosquitto."""
    return (
        "# Gateways: username = gateway_id. Nothing outside their own subtree.\n"
        f"pattern read {base_topic}/%u/request/+\n"
        f"pattern read {base_topic}/%u/ha/+/set\n"
        f"pattern write {base_topic}/%u/availability\n"
        f"pattern readwrite {base_topic}/%u/state\n"
        f"pattern readwrite {base_topic}/%u/claim/+\n"
        f"pattern write {base_topic}/%u/events\n"
        f"pattern write {base_topic}/%u/locks/+/state\n"
        f"pattern write {base_topic}/%u/response/#\n"
        f"pattern write {ha_prefix}/+/lockgate_%u/+/config\n"
        "\n"
        "# Operators (and lockgate ctl): command any gateway, read everything of lockgate.\n"
        "user operator\n"
        f"topic write {base_topic}/+/request/+\n"
        f"topic read {base_topic}/#\n"
        "\n"
        "# Home Assistant: read state and discovery, write only the HA command topics.\n"
        "user homeassistant\n"
        f"topic read {base_topic}/#\n"
        f"topic write {base_topic}/+/ha/+/set\n"
        f"topic read {ha_prefix}/#\n"
    )
