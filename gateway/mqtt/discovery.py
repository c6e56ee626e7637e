"""Home Assistant MQTT discovery: per lock a lock entity, a battery sensor and a last-access
sensor, all reading the lock's retained state topic, available when the gateway is online and
the lock connected.

Home Assistant cannot sign commands, so its lock entity writes plain ``LOCK`` / ``UNLOCK`` to
``<root>/ha/<lock>/set``. ``LOCK`` is honoured; ``UNLOCK`` only when the config says
``homeassistant_unlock = true``, which is safe only when the broker ACL lets nobody but Home
Assistant write there (docs/mqtt.md).
"""

from __future__ import annotations

from gateway.mqtt.payloads import JsonObject
from gateway.mqtt.topics import Topics, ha_safe

PAYLOAD_LOCK = "LOCK"
PAYLOAD_UNLOCK = "UNLOCK"
PAYLOAD_RESET = "None"
"""What Home Assistant's MQTT lock takes as "state unknown" (its ``payload_reset`` default).

Any other value it does not recognise is ignored and the entity keeps its last state, so a
lock whose bolt Lockgate cannot read must map to this, not to ``unknown``.
"""
BOLT_STATES = ("locked", "unlocked", "jammed")
BOLT_TEMPLATE = (
    "{{ value_json.bolt if value_json.bolt in "
    + repr(list(BOLT_STATES)).replace('"', "'")
    + " else '"
    + PAYLOAD_RESET
    + "' }}"
)


def _device(topics: Topics, lock_id: str, name: str, model: str) -> JsonObject:
    return {
        "identifiers": [f"{topics.ha_node}_{ha_safe(lock_id)}"],
        "name": name,
        "manufacturer": "Lockgate",
        "model": f"{model} lock via Lockgate",
        "via_device": topics.ha_node,
    }


def _availability(topics: Topics, lock_id: str) -> JsonObject:
    return {
        "availability": [
            {"topic": topics.availability},
            {
                "topic": topics.lock_state(lock_id),
                "value_template": "{{ 'online' if value_json.connected else 'offline' }}",
            },
        ],
        "availability_mode": "all",
    }


def lock_configs(
    topics: Topics, lock_id: str, name: str, model: str, *, version: str
) -> dict[str, JsonObject]:
    """The discovery documents for one lock, by config topic."""
    base_id = f"{topics.ha_node}_{ha_safe(lock_id)}"
    state = topics.lock_state(lock_id)
    common = {
        "device": _device(topics, lock_id, name, model),
        "origin": {"name": "Lockgate", "sw_version": version},
        **_availability(topics, lock_id),
    }
    return {
        topics.ha_config("lock", lock_id): {
            "name": None,
            "unique_id": f"{base_id}_lock",
            "command_topic": topics.ha_set(lock_id),
            "state_topic": state,
            "value_template": BOLT_TEMPLATE,
            "payload_reset": PAYLOAD_RESET,
            "state_locked": "locked",
            "state_unlocked": "unlocked",
            "state_jammed": "jammed",
            "payload_lock": PAYLOAD_LOCK,
            "payload_unlock": PAYLOAD_UNLOCK,
            "optimistic": False,
            "qos": 1,
            **common,
        },
        topics.ha_config("sensor", f"{lock_id}_battery"): {
            "name": "Battery",
            "unique_id": f"{base_id}_battery",
            "state_topic": state,
            "value_template": "{{ value_json.battery_percent }}",
            "device_class": "battery",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            **common,
        },
        topics.ha_config("sensor", f"{lock_id}_last_access"): {
            "name": "Last access",
            "unique_id": f"{base_id}_last_access",
            "icon": "mdi:door-open",
            "state_topic": state,
            "value_template": (
                "{{ value_json.last_access.summary if value_json.last_access else 'none' }}"
            ),
            "json_attributes_topic": state,
            "json_attributes_template": "{{ (value_json.last_access or {}) | tojson }}",
            **common,
        },
    }


def gateway_configs(topics: Topics, *, version: str) -> dict[str, JsonObject]:
    """A connectivity sensor for the gateway itself (the device the locks are ``via``)."""
    return {
        topics.ha_config("binary_sensor", "gateway"): {
            "name": "Cloud",
            "unique_id": f"{topics.ha_node}_cloud",
            "device_class": "connectivity",
            "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.cloud.reachable else 'OFF' }}",
            "availability_topic": topics.availability,
            "device": {
                "identifiers": [topics.ha_node],
                "name": f"Lockgate {topics.gateway_id}",
                "manufacturer": "Lockgate",
                "model": "Lockgate gateway",
                "sw_version": version,
            },
            "origin": {"name": "Lockgate", "sw_version": version},
        }
    }
