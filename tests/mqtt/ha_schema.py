"""What Home Assistant's MQTT integration accepts in a discovery document, and how its lock
entity reads a state message — transcribed from Home Assistant core
(``homeassistant/components/mqtt/{lock,sensor,binary_sensor,schemas,config}.py``, 2024-2025),
so the tests can check Lockgate's discovery against it without installing Home Assistant.

Home Assistant's ``DISCOVERY_SCHEMA`` for each platform is ``PLATFORM_SCHEMA_MODERN`` with
``extra=vol.REMOVE_EXTRA``: a key it does not know is dropped silently, so a misspelt key is a
setting that never takes effect. The tests therefore require every key to be known.
"""

from __future__ import annotations

from typing import Any

import jinja2

# MQTT_AVAILABILITY_SCHEMA + MQTT_ENTITY_COMMON_SCHEMA (schemas.py), plus ``origin``
# (discovery.py reads it before validation) and ``name`` (each platform declares it).
COMMON = frozenset(
    {
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "payload_available",
        "payload_not_available",
        "device",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "icon",
        "json_attributes_topic",
        "json_attributes_template",
        "object_id",
        "default_entity_id",
        "unique_id",
        "origin",
        "name",
        "qos",
    }
)
AVAILABILITY_ENTRY = frozenset(
    {"topic", "payload_available", "payload_not_available", "value_template"}
)
DEVICE = frozenset(
    {
        "configuration_url",
        "connections",
        "hw_version",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "suggested_area",
        "sw_version",
        "via_device",
    }
)
ORIGIN = frozenset({"name", "sw_version", "support_url"})

# MQTT_RW_SCHEMA (config.py)
RW = frozenset({"command_topic", "retain", "state_topic", "qos"})

LOCK = (
    COMMON
    | RW
    | frozenset(
        {
            "code_format",
            "command_template",
            "optimistic",
            "payload_lock",
            "payload_unlock",
            "payload_open",
            "payload_reset",
            "state_jammed",
            "state_locked",
            "state_locking",
            "state_open",
            "state_opening",
            "state_unlocked",
            "state_unlocking",
            "value_template",
        }
    )
)
LOCK_DEFAULT_PAYLOAD_RESET = "None"

SENSOR = COMMON | frozenset(
    {
        "state_topic",
        "value_template",
        "device_class",
        "expire_after",
        "force_update",
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    }
)
BINARY_SENSOR = COMMON | frozenset(
    {
        "state_topic",
        "value_template",
        "device_class",
        "expire_after",
        "force_update",
        "off_delay",
        "payload_off",
        "payload_on",
    }
)

PLATFORMS = {"lock": LOCK, "sensor": SENSOR, "binary_sensor": BINARY_SENSOR}


def unknown_keys(platform: str, doc: dict[str, Any]) -> set[str]:
    """Keys Home Assistant's discovery schema would drop, at the top level and nested."""
    bad = set(doc) - PLATFORMS[platform]
    bad |= {f"device.{k}" for k in doc.get("device", {})} - {f"device.{k}" for k in DEVICE}
    bad |= {f"origin.{k}" for k in doc.get("origin", {})} - {f"origin.{k}" for k in ORIGIN}
    for entry in doc.get("availability", []):
        bad |= {f"availability.{k}" for k in entry} - {
            f"availability.{k}" for k in AVAILABILITY_ENTRY
        }
    return bad


def render(template: str, value_json: Any) -> str:
    """Render a value template as Home Assistant does (Jinja2, ``value_json`` bound)."""
    return jinja2.Environment(autoescape=False).from_string(template).render(value_json=value_json)


def lock_state_after(doc: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """Home Assistant's MQTT lock state after a series of state messages.

    As in ``MqttLock._message_received``: the rendered value equal to ``payload_reset`` makes
    the state unknown; a value equal to one of the ``state_*`` options sets that state; any
    other value is ignored and the entity keeps the state it had.
    """
    reset = doc.get("payload_reset", LOCK_DEFAULT_PAYLOAD_RESET)
    states = {
        doc.get("state_locked", "LOCKED"): "locked",
        doc.get("state_unlocked", "UNLOCKED"): "unlocked",
        doc.get("state_jammed", "JAMMED"): "jammed",
        doc.get("state_locking", "LOCKING"): "locking",
        doc.get("state_unlocking", "UNLOCKING"): "unlocking",
        doc.get("state_open", "OPEN"): "open",
        doc.get("state_opening", "OPENING"): "opening",
    }
    state = "unknown"
    for message in messages:
        value = render(doc["value_template"], message)
        if value == reset:
            state = "unknown"
        elif value in states:
            state = states[value]
    return state
