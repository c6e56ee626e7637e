"""An access event's stored JSON is its payload, whatever fields it has."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from drivers.base import EventKind, LockEvent, SecurityAlert
from gateway.events import AccessEvent

T = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def events() -> list[AccessEvent]:
    return [
        AccessEvent(AccessEvent.new_id(), T, "access_denied", "front", "gateway", "code"),
        AccessEvent(
            AccessEvent.new_id(),
            T.replace(microsecond=0),
            "access_allowed",
            "front",
            "gateway",
            "code",
            "m1",
            "g1",
            "user-1",
            "valid",
            detail="dry run by operator olga «ü» \"quoted\"",
        ),
        AccessEvent(AccessEvent.new_id(), T.astimezone(timezone(timedelta(hours=2))), "x"),
        AccessEvent.from_lock(
            "back",
            LockEvent(7, T, EventKind.UNLOCKED, credential_id="m2"),
            "g2",
            None,
            "seen",
        ),
        AccessEvent.from_lock(
            "back", LockEvent(3, T, EventKind.LOCKED), None, epoch=2
        ),
        AccessEvent.security_alert(SecurityAlert("side", "rogue_device", "aa:bb"), T),
        AccessEvent("e", T, "k", lock_seq=0, detail=""),
    ]


def test_the_stored_json_is_the_payload_in_its_order_without_nones() -> None:
    for event in events():
        text = event.payload_json()
        assert json.loads(text) == event.payload()
        assert list(json.loads(text)) == list(event.payload())  # the same order
        assert text == json.dumps(event.payload(), ensure_ascii=False, separators=(",", ":"))
        assert "null" not in text


def test_new_ids_are_random_version_4_uuids() -> None:
    ids = [AccessEvent.new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for i in ids:
        u = uuid.UUID(i)
        assert (str(u), u.version, u.variant) == (i, 4, uuid.RFC_4122)
