"""Attacker's side: lock ids that differ only by ``_``/``-``/case/one character must never
reach each other's state. Removing ``door_1`` once also deleted the link keys of ``door-1``,
``DOOR_1`` and ``doorX1`` (``LIKE 'door_1/%'``: ``_`` is a wildcard and LIKE ignores ASCII
case); those locks then needed a physical reset."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.store.lock_map import LockRecord
from gateway.store.store import Store
from gateway.store.sync_state import CredentialSyncState, SyncStatus

T0 = datetime(2026, 3, 1, tzinfo=UTC)
VICTIM = "door_1"
LOOK_ALIKES = ["door-1", "DOOR_1", "doorX1", "Door_1", "door_10", "door_1x", "door%1"]
"""Valid lock ids a LIKE/GLOB pattern or a case-folding compare would confuse with VICTIM
(``%`` cannot be a lock id, but the keystore's names may hold it)."""


def _rec(lock_id: str) -> LockRecord:
    return LockRecord(lock_id, "sim", frozenset({"s"}), frozenset(), frozenset())


def _fill(store: Store, lock_ids: list[str]) -> None:
    for lid in lock_ids:
        store.keystore(lid).put("link", lid.encode())
        store.keystore(lid).put("lockproto/link", lid.encode())
    store.sync_states.write(
        [CredentialSyncState(lid, "m1", SyncStatus.APPLIED) for lid in lock_ids], T0
    )


def _survivors_intact(store: Store) -> None:
    for lid in LOOK_ALIKES:
        assert store.keystore(lid).get("link") == lid.encode(), lid
        assert store.keystore(lid).get("lockproto/link") == lid.encode(), lid
        assert set(store.sync_states.for_lock(lid)) == {"m1"}, lid


def test_look_alike_lock_ids_keep_their_link_keys_when_a_lock_is_cleared(store: Store) -> None:
    _fill(store, [VICTIM, *LOOK_ALIKES])
    store.keystore(VICTIM).clear()
    store.sync_states.remove_lock(VICTIM)
    assert store.keystore(VICTIM).get("link") is None
    assert store.keystore(VICTIM).get("lockproto/link") is None
    assert store.sync_states.for_lock(VICTIM) == {}
    _survivors_intact(store)


def test_look_alike_lock_ids_survive_a_lock_dropped_from_the_config(store: Store) -> None:
    everyone = [VICTIM, *LOOK_ALIKES]
    store.lock_map.replace([_rec(lid) for lid in everyone], T0)
    _fill(store, everyone)
    assert store.lock_map.replace([_rec(lid) for lid in LOOK_ALIKES], T0) == [VICTIM]
    assert store.keystore(VICTIM).get("link") is None
    assert set(store.lock_map.all()) == set(LOOK_ALIKES)
    _survivors_intact(store)


def test_the_store_uses_no_pattern_matching_on_ids() -> None:
    """A guard for the next query someone writes: no LIKE or GLOB in the store."""
    import re
    from pathlib import Path

    import gateway.store

    pattern_sql = re.compile(r"\b(LIKE|GLOB|REGEXP|MATCH)\s*[?'(:]", re.IGNORECASE)
    root = Path(gateway.store.__file__).parent
    for path in root.glob("*.py"):
        found = pattern_sql.search(path.read_text())
        assert found is None, f"{path.name} matches ids by pattern: {found.group(0)!r}"
