"""Which User Code slot holds which credential: the driver's own record of the lock.

A Z-Wave lock stores bare codes in numbered slots; it knows nothing of credential ids or content
tags. The slot map keeps, per slot Lockgate uses: the credential id, the gateway's content tag,
a keyed hash of the code (HMAC-SHA256 under a random key of this lock, so a read-back can be
compared without keeping the code), the window, and a state. It lives in the gateway's
encrypted key store (:class:`drivers.base.KeyStore`) and is written *before* each slot write
(``writing``/``clearing``) and after its confirmation (``held``/gone), so after a crash the
driver knows which slot might hold what and settles it with one User Code Get instead of
writing anything twice.

Slots found occupied by codes Lockgate did not write (an owner's code typed in at the keypad)
are ``foreign``: never used, never cleared.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from drivers.base import KeyStore, TimeWindow

MAP_NAME = "zwave/slots"
KEY_NAME = "zwave/code-key"


class SlotState(enum.StrEnum):
    WRITING = "writing"
    """A Set was (maybe) sent; not confirmed yet."""
    HELD = "held"
    """Confirmed by a User Code Get."""
    CLEARING = "clearing"
    """A clear was (maybe) sent; not confirmed yet."""


@dataclass(frozen=True, slots=True)
class SlotEntry:
    slot: int
    credential_id: str
    tag: bytes
    code_hash: str
    state: SlotState
    window: TimeWindow | None = None

    def to_json(self) -> dict[str, object]:
        w = self.window
        return {
            "slot": self.slot,
            "id": self.credential_id,
            "tag": self.tag.hex(),
            "hash": self.code_hash,
            "state": self.state.value,
            "window": None if w is None else [_iso(w.starts_at), _iso(w.ends_at)],
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> SlotEntry:
        window = d.get("window")
        w = None
        if isinstance(window, list) and len(window) == 2:
            w = TimeWindow(_parse(window[0]), _parse(window[1]))
        return cls(
            slot=int(str(d["slot"])),
            credential_id=str(d["id"]),
            tag=bytes.fromhex(str(d["tag"])),
            code_hash=str(d["hash"]),
            state=SlotState(str(d["state"])),
            window=w,
        )


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse(v: object) -> datetime | None:
    return None if v is None else datetime.fromisoformat(str(v))


class SlotMap:
    def __init__(self, keystore: KeyStore) -> None:
        self._keystore = keystore
        key = keystore.get(KEY_NAME)
        if key is None:
            key = os.urandom(32)
            keystore.put(KEY_NAME, key)
        self._key = key
        self.entries: dict[int, SlotEntry] = {}
        self.foreign: set[int] = set()
        self.checksum: int | None = None
        """The lock's User Code checksum after Lockgate's last confirmed change."""
        self.scanned = False
        """Every slot in range was read once, so ``foreign`` is known."""
        raw = keystore.get(MAP_NAME)
        if raw is not None:
            data = json.loads(raw)
            self.entries = {e.slot: e for e in map(SlotEntry.from_json, data["entries"])}
            self.foreign = set(data.get("foreign", []))
            self.checksum = data.get("checksum")
            self.scanned = bool(data.get("scanned", False))

    def code_hash(self, code: str) -> str:
        return hmac.new(self._key, code.encode(), hashlib.sha256).hexdigest()[:32]

    def matches(self, entry: SlotEntry, code: str) -> bool:
        return hmac.compare_digest(entry.code_hash, self.code_hash(code))

    def save(self) -> None:
        data = {
            "entries": [e.to_json() for e in sorted(self.entries.values(), key=lambda e: e.slot)],
            "foreign": sorted(self.foreign),
            "checksum": self.checksum,
            "scanned": self.scanned,
        }
        self._keystore.put(MAP_NAME, json.dumps(data, separators=(",", ":")).encode())

    # --- queries -------------------------------------------------------------------------------
    def by_credential(self, credential_id: str) -> SlotEntry | None:
        for e in self.entries.values():
            if e.credential_id == credential_id:
                return e
        return None

    def held(self) -> Iterator[SlotEntry]:
        return (e for e in self.entries.values() if e.state is SlotState.HELD)

    def unsettled(self) -> list[SlotEntry]:
        return [e for e in self.entries.values() if e.state is not SlotState.HELD]

    def free_slot(self, slots: Iterable[int]) -> int | None:
        for slot in slots:
            if slot not in self.entries and slot not in self.foreign:
                return slot
        return None

    def holder_of_code(self, code: str) -> SlotEntry | None:
        h = self.code_hash(code)
        for e in self.entries.values():
            if hmac.compare_digest(e.code_hash, h):
                return e
        return None

    # --- changes (each saved at once) ------------------------------------------------------------
    def put(self, entry: SlotEntry) -> None:
        self.entries[entry.slot] = entry
        self.checksum = None
        self.save()

    def set_state(self, entry: SlotEntry, state: SlotState) -> SlotEntry:
        new = replace(entry, state=state)
        self.entries[entry.slot] = new
        self.save()
        return new

    def drop(self, slot: int) -> None:
        self.entries.pop(slot, None)
        self.checksum = None
        self.save()
