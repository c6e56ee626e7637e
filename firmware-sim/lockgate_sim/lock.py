"""The simulated lock: what real lock firmware does, without the radio or the wire.

A :class:`SimLock` holds credentials in a limited number of slots, checks code rules, optionally
enforces time windows on its own clock (which may drift), keeps an audit log with sequence
numbers that the gateway reads from a cursor and acknowledges, and has a keypad and a card
reader you can use. When its memory cannot decide (a PIN it does not hold), it asks the gateway
through :attr:`SimLock.online_decider` if one is attached.

Non-volatile state (credentials, audit log, link keys) lives in :class:`~lockgate_sim.flash.Flash`,
written one change at a time;
:meth:`SimLock.reboot` drops everything volatile. :class:`Faults` injects what goes wrong in the
field. Links (in-process, serial, BLE) wrap this class; none of them is known here.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drivers.base import (
    BoltState,
    Capabilities,
    CredentialKind,
    EventKind,
    LockEvent,
    StoredCredential,
    TimeWindow,
)
from lockgate_sim.flash import Flash

OnlineDecider = Callable[
    [CredentialKind, bytes, bytes | None], Awaitable[tuple[bool, str, str | None]]
]
"""(kind, secret, proof) -> (allow, reason, credential_id)."""

MobileKeyVerifier = Callable[[bytes, bytes], bool]
"""(the mobile-key material stored in the slot, the attempt's proof) -> whether it verifies."""


@dataclass(frozen=True, slots=True)
class SimLockSpec:
    slots: int = 200
    max_batch: int = 50
    enforces_time_windows: bool = False
    kinds: frozenset[CredentialKind] = frozenset({CredentialKind.CODE, CredentialKind.CARD})
    code_min_length: int = 4
    code_max_length: int = 8
    code_alphabet: str = "0123456789"
    has_card_reader: bool = True
    firmware: str = "lockgate-sim 1.0"
    unlock_seconds: float = 5.0
    written_only_by_gateway: bool = False

    def capabilities(self) -> Capabilities:
        return Capabilities(
            slots=self.slots,
            max_batch=self.max_batch,
            kinds=self.kinds,
            enforces_time_windows=self.enforces_time_windows,
            code_min_length=self.code_min_length,
            code_max_length=self.code_max_length,
            code_alphabet=self.code_alphabet,
            has_keypad=True,
            has_card_reader=self.has_card_reader,
            online_validation=True,
            written_only_by_gateway=self.written_only_by_gateway,
        )


@dataclass(slots=True)
class Faults:
    """What goes wrong in the field, switched on by tests and the demo."""

    offline: bool = False
    """The lock does not answer at all."""
    slow_seconds: float = 0.0
    """Every operation takes this long first."""
    full: bool = False
    """The lock reports no free slot whatever it holds."""
    clock_drift_seconds: float = 0.0
    """The lock's clock runs this far ahead (negative: behind) of true time."""
    reject_ids: set[str] = field(default_factory=set)
    """Credential ids the lock refuses with ``rejected``."""
    reboot_after_puts: int | None = None
    """Reboot (losing volatile state and the batch in progress) after this many more puts."""


@dataclass(slots=True)
class Slot:
    credential_id: str
    kind: CredentialKind
    secret: bytes
    tag: bytes
    window: TimeWindow | None

    def stored(self) -> StoredCredential:
        return StoredCredential(self.credential_id, self.kind, self.tag, self.window)


class LockRebooted(Exception):
    """Raised inside an operation when the lock reboots in the middle of it."""


class SimLock:
    def __init__(
        self,
        lock_id: str,
        spec: SimLockSpec | None = None,
        *,
        now: Callable[[], datetime],
        state_file: Path | None = None,
    ) -> None:
        self.lock_id = lock_id
        self.spec = spec or SimLockSpec()
        self.faults = Faults()
        self._true_now = now
        self._flash = Flash(state_file)
        self.online_decider: OnlineDecider | None = None
        self.mobile_key_verifier: MobileKeyVerifier | None = None
        """Set by links whose lock checks mobile keys itself (BLE); without it every mobile-key
        attempt goes to the gateway through :attr:`online_decider`."""
        self.on_event: Callable[[LockEvent], None] | None = None
        self.put_counts: Counter[tuple[str, bytes]] = Counter()
        """How often each (credential id, tag) was written: a second write is a wasted one."""
        self.boots = 0
        self._slots: dict[str, Slot] = {}
        self._by_secret: dict[tuple[CredentialKind, bytes], str] = {}
        """(kind, secret) -> the credential id holding it, as firmware indexes its slots."""
        self._log: list[LockEvent] = []
        self._next_seq = 1
        self._acked_seq = 0
        self.link_keys: dict[str, str] = {}
        """Opaque non-volatile storage for the link layer (commissioning keys), base64 values."""
        self._load()
        self._boot()

    # --- time --------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._true_now() + timedelta(seconds=self.faults.clock_drift_seconds)

    def set_time(self, t: datetime) -> None:
        self.faults.clock_drift_seconds = (t - self._true_now()).total_seconds()

    # --- power -------------------------------------------------------------------------------
    def _boot(self) -> None:
        self.boots += 1
        self.bolt = BoltState.LOCKED
        self.battery_percent = 87
        self.tamper = False
        self._relock_handle: asyncio.TimerHandle | None = None

    def reboot(self) -> None:
        """Power-cycle: volatile state is gone, flash is read back, a ``rebooted`` entry logged."""
        if getattr(self, "_relock_handle", None) is not None:
            assert self._relock_handle is not None
            self._relock_handle.cancel()
        self._slots.clear()
        self._by_secret.clear()
        self._log.clear()
        self._load()
        self._boot()
        self._append(EventKind.REBOOTED)

    def wipe(self) -> None:
        """The installer's full wipe: flash erased (credentials, the audit log and its
        ``seq``, the link keys), as the lock left the factory before its first boot."""
        self._slots.clear()
        self._by_secret.clear()
        self._log.clear()
        self._next_seq, self._acked_seq = 1, 0
        self.link_keys = {}
        self.put_counts.clear()
        self._flash.snapshot(self._image())

    def lose_log(self) -> None:
        """A firmware fault (against the protocol): the audit log and its ``seq`` are gone, the
        lock counts from 1 again and keeps everything else, its link keys too."""
        self._log.clear()
        self._next_seq, self._acked_seq = 1, 0
        self._flash.snapshot(self._image())

    async def operate(self) -> None:
        """Called by links before every operation: applies the offline and slow faults."""
        if self.faults.slow_seconds:
            await asyncio.sleep(self.faults.slow_seconds)
        if self.faults.offline:
            raise ConnectionError(f"lock {self.lock_id} is offline")

    # --- credentials -------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return self.spec.capabilities()

    def list_credentials(self) -> list[StoredCredential]:
        return [slot.stored() for slot in self._slots.values()]

    def put(self, entries: list[Slot]) -> dict[str, str]:
        """Store credentials; returns ``{credential_id: error_code}`` for the refused ones.

        Entries are committed to flash one by one, as firmware writes slots: a reboot in the
        middle of a batch leaves the ones before it stored and the rest not.
        """
        if len(entries) > self.spec.max_batch:
            return {e.credential_id: "batch_too_large" for e in entries}
        failures: dict[str, str] = {}
        for entry in entries:
            problem = self._check(entry)
            if problem is not None:
                failures[entry.credential_id] = problem
                continue
            if self.faults.reboot_after_puts is not None:
                if self.faults.reboot_after_puts <= 0:
                    self.faults.reboot_after_puts = None
                    self.reboot()
                    raise LockRebooted(self.lock_id)
                self.faults.reboot_after_puts -= 1
            self._store(entry)
            key = (entry.credential_id, entry.tag)
            self.put_counts[key] += 1
            self._write({"op": "put", "slot": _slot_to_json(entry), "count": self.put_counts[key]})
        return failures

    def _check(self, entry: Slot) -> str | None:
        spec = self.spec
        if entry.credential_id in self.faults.reject_ids:
            return "rejected"
        if entry.kind not in spec.kinds:
            return "unsupported"
        if entry.kind is CredentialKind.CODE:
            code = entry.secret.decode("ascii", "replace")
            if not spec.code_min_length <= len(code) <= spec.code_max_length or any(
                ch not in spec.code_alphabet for ch in code
            ):
                return "code_rule"
        holder = self._by_secret.get((entry.kind, entry.secret))
        if holder is not None and holder != entry.credential_id:
            return "duplicate"
        replacing = entry.credential_id in self._slots
        if not replacing and (self.faults.full or len(self._slots) >= spec.slots):
            return "capacity"
        return None

    def delete(self, credential_ids: list[str]) -> dict[str, str]:
        for cid in credential_ids:
            slot = self._slots.pop(cid, None)
            if slot is not None:
                del self._by_secret[(slot.kind, slot.secret)]
                self._write({"op": "delete", "id": cid})
        return {}

    # --- the door ----------------------------------------------------------------------------
    async def enter_code(self, code: str) -> bool:
        """Someone types ``code`` on the keypad. Returns whether the door opened."""
        return await self._present(CredentialKind.CODE, code.encode("ascii"), None)

    async def present_card(self, card_number: str) -> bool:
        if not self.spec.has_card_reader:
            raise RuntimeError(f"lock {self.lock_id} has no card reader")
        return await self._present(CredentialKind.CARD, card_number.encode("ascii"), None)

    async def present_mobile_key(self, key_id: bytes, proof: bytes) -> bool:
        return await self._present(CredentialKind.MOBILE_KEY, key_id, proof)

    async def _present(self, kind: CredentialKind, secret: bytes, proof: bytes | None) -> bool:
        slot = self._find(kind, secret)
        if (
            slot is not None
            and kind is CredentialKind.MOBILE_KEY
            and self.mobile_key_verifier is not None
        ):
            if not self.mobile_key_verifier(slot.secret, proof or b""):
                return self._decided(False, "bad_proof", slot.credential_id, kind, "lock")
            if (
                self.spec.enforces_time_windows
                and slot.window
                and not slot.window.contains(self.now())
            ):
                return self._decided(False, "outside_window", slot.credential_id, kind, "lock")
            return self._decided(True, "valid", slot.credential_id, kind, "lock")
        if slot is not None and kind is not CredentialKind.MOBILE_KEY:
            if (
                self.spec.enforces_time_windows
                and slot.window
                and not slot.window.contains(self.now())
            ):
                return self._decided(False, "outside_window", slot.credential_id, kind, "lock")
            return self._decided(True, "valid", slot.credential_id, kind, "lock")
        if self.online_decider is None:
            return self._decided(False, "unknown_credential", None, kind, "lock")
        try:
            allow, reason, cid = await self.online_decider(kind, secret, proof)
        except (ConnectionError, TimeoutError):
            return self._decided(False, "gateway_unreachable", None, kind, "lock")
        return self._decided(allow, reason, cid, kind, "gateway")

    def _find(self, kind: CredentialKind, secret: bytes) -> Slot | None:
        cid = self._by_secret.get((kind, secret))
        return None if cid is None else self._slots[cid]

    def _decided(
        self, allow: bool, reason: str, cid: str | None, kind: CredentialKind, by: str
    ) -> bool:
        event = EventKind.ACCESS_ALLOWED if allow else EventKind.ACCESS_DENIED
        self._append(event, credential_kind=kind, credential_id=cid, reason=reason, decided_by=by)
        if allow:
            self.unlock(self.spec.unlock_seconds, log=False)
        return allow

    def unlock(self, hold_seconds: float | None = None, *, log: bool = True) -> None:
        self.bolt = BoltState.UNLOCKED
        if log:
            self._append(EventKind.UNLOCKED, reason="command")
        if self._relock_handle is not None:
            self._relock_handle.cancel()
            self._relock_handle = None
        if hold_seconds:
            loop = asyncio.get_running_loop()
            self._relock_handle = loop.call_later(hold_seconds, self._auto_relock)

    def _auto_relock(self) -> None:
        self._relock_handle = None
        self.bolt = BoltState.LOCKED

    def lock(self) -> None:
        if self._relock_handle is not None:
            self._relock_handle.cancel()
            self._relock_handle = None
        self.bolt = BoltState.LOCKED
        self._append(EventKind.LOCKED, reason="command")

    # --- audit log ---------------------------------------------------------------------------
    def _append(
        self,
        event_kind: EventKind,
        *,
        credential_kind: CredentialKind | None = None,
        credential_id: str | None = None,
        reason: str | None = None,
        decided_by: str | None = None,
    ) -> None:
        event = LockEvent(
            seq=self._next_seq,
            occurred_at=self.now(),
            kind=event_kind,
            credential_kind=credential_kind,
            credential_id=credential_id,
            reason=reason,
            decided_by=decided_by,
        )
        self._next_seq += 1
        self._log.append(event)
        self._write({"op": "event", "event": _event_to_json(event)})
        if self.on_event is not None:
            self.on_event(event)

    def events_after(self, after_seq: int, limit: int = 100) -> list[LockEvent]:
        return [e for e in self._log if e.seq > after_seq][:limit]

    def ack(self, up_to_seq: int) -> None:
        """The gateway has the entries up to ``up_to_seq``: the lock may free them."""
        if up_to_seq > self._acked_seq:
            self._acked_seq = min(up_to_seq, self._next_seq - 1)
            self._log = [e for e in self._log if e.seq > self._acked_seq]
            self._write({"op": "ack", "seq": self._acked_seq})

    @property
    def last_seq(self) -> int:
        """The newest sequence number ever written (0 before the first entry)."""
        return self._next_seq - 1

    @property
    def log(self) -> list[LockEvent]:
        return list(self._log)

    # --- flash -------------------------------------------------------------------------------
    def _store(self, entry: Slot) -> None:
        old = self._slots.get(entry.credential_id)
        if old is not None:
            del self._by_secret[(old.kind, old.secret)]
        self._slots[entry.credential_id] = entry
        self._by_secret[(entry.kind, entry.secret)] = entry.credential_id

    def _write(self, change: dict[str, Any]) -> None:
        """Commit one change to flash; once the journal outgrows the image, write a snapshot."""
        size = len(self._slots) + len(self._log) + len(self.put_counts)
        if self._flash.needs_snapshot(size):
            self._flash.snapshot(self._image())
        else:
            self._flash.append(change)

    def _image(self) -> dict[str, Any]:
        return {
            "slots": [_slot_to_json(s) for s in self._slots.values()],
            "log": [_event_to_json(e) for e in self._log],
            "next_seq": self._next_seq,
            "acked_seq": self._acked_seq,
            "link_keys": self.link_keys,
            "put_counts": [[cid, tag.hex(), n] for (cid, tag), n in self.put_counts.items()],
        }

    def save_link_keys(self) -> None:
        self._write({"op": "link_keys", "keys": self.link_keys})

    def _load(self) -> None:
        data = self._flash.load()
        if data is None:
            return
        self._slots = {s["id"]: _slot_from_json(s) for s in data["slots"]}
        self._by_secret = {(s.kind, s.secret): cid for cid, s in self._slots.items()}
        self._log = [_event_from_json(e) for e in data["log"]]
        self._next_seq = int(data["next_seq"])
        self._acked_seq = int(data["acked_seq"])
        self.link_keys = dict(data.get("link_keys", {}))
        self.put_counts = Counter(
            {(cid, bytes.fromhex(tag)): int(n) for cid, tag, n in data.get("put_counts", [])}
        )


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _slot_to_json(s: Slot) -> dict[str, Any]:
    return {
        "id": s.credential_id,
        "kind": s.kind.value,
        "secret": base64.b64encode(s.secret).decode(),
        "tag": s.tag.hex(),
        "window": None if s.window is None else [_iso(s.window.starts_at), _iso(s.window.ends_at)],
    }


def _slot_from_json(d: dict[str, Any]) -> Slot:
    window = None if d["window"] is None else TimeWindow(_dt(d["window"][0]), _dt(d["window"][1]))
    return Slot(
        d["id"],
        CredentialKind(d["kind"]),
        base64.b64decode(d["secret"]),
        bytes.fromhex(d["tag"]),
        window,
    )


def _event_to_json(e: LockEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.occurred_at.isoformat(),
        "kind": e.kind.value,
        "ckind": e.credential_kind.value if e.credential_kind else None,
        "cid": e.credential_id,
        "reason": e.reason,
        "by": e.decided_by,
    }


def _event_from_json(d: dict[str, Any]) -> LockEvent:
    return LockEvent(
        seq=int(d["seq"]),
        occurred_at=datetime.fromisoformat(d["at"]),
        kind=EventKind(d["kind"]),
        credential_kind=CredentialKind(d["ckind"]) if d["ckind"] else None,
        credential_id=d["cid"],
        reason=d["reason"],
        decided_by=d["by"],
    )
