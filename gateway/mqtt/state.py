"""Retained state: what the gateway and each lock look like now, published when it changes.

:class:`StateView` builds the documents from the running gateway (no MQTT here) and remembers
what only the management plane learns: the bolt and battery last read from each lock and the
last access at each lock. :class:`RetainedState` publishes a document when what it says has
changed since it last published it on this connection (timestamps that move on every pass, such
as ``last_sync_at``, do not count as a change), and otherwise once per heartbeat, so a reader
sees fresh timestamps every few minutes without a message every poll. A broker restart (a new
connection) gets everything again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drivers.base import LockStatus
from gateway.mqtt.payloads import JsonObject
from gateway.mqtt.topics import Topics
from gateway.sync_issues import issues_in

if TYPE_CHECKING:
    from gateway.managed import ManagedGateway
    from gateway.reconciler import LockReconciler

log = logging.getLogger(__name__)

ACCESS_KINDS = frozenset({"access_allowed", "access_denied"})


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass(frozen=True, slots=True)
class StatusReading:
    status: LockStatus
    at: datetime


class StateView:
    def __init__(
        self,
        gw: ManagedGateway,
        topics: Topics,
        *,
        command_key: str | None = None,
        identity: str | None = None,
        command_key_sig: str | None = None,
    ) -> None:
        self.gw = gw
        self.topics = topics
        self.command_key = command_key
        """Base64 of the gateway's X25519 key that secret arguments are sealed to."""
        self.identity = identity
        """Base64 of the gateway's Ed25519 identity (:mod:`gateway.mqtt.identity`)."""
        self.command_key_sig = command_key_sig
        """The identity's signature binding ``command_key`` to it."""
        self.status: dict[str, StatusReading] = {}
        self.last_access: dict[str, JsonObject] = {}
        self.dirty = asyncio.Event()
        """Set by :meth:`changed`: something worth republishing happened."""
        self._stale_locks: set[str] = set()
        self._all_stale = True
        self._counts: dict[str, dict[str, int]] = {}
        """Each lock's credential counts as of its last document (the gateway's totals)."""
        self._issues: tuple[int, list[JsonObject]] | None = None
        """The sync issues as of a version of the cloud data (they change only with it)."""
        for payload in gw.store.outbox.last_access().values():
            self.note_event(payload)  # the last-access sensor survives a restart

    # --- what the plane learns ---------------------------------------------------------------
    def changed(self, lock_id: str | None = None) -> None:
        """Something worth republishing happened: to one lock (its document and the gateway's
        are rebuilt) or to anything (``None``: every document is rebuilt)."""
        if lock_id is None:
            self._all_stale = True
        else:
            self._stale_locks.add(lock_id)
        self.dirty.set()

    def stale(self) -> set[str] | None:
        """The locks whose documents :meth:`changed` asked for since the last call (``None``:
        all of them), and clears the request."""
        self.dirty.clear()
        locks = None if self._all_stale else self._stale_locks
        self._all_stale, self._stale_locks = False, set()
        return locks

    def note_status(self, lock_id: str, status: LockStatus) -> None:
        self.status[lock_id] = StatusReading(status, self.gw.clock.now())
        self.changed(lock_id)

    def note_event(self, payload: JsonObject) -> None:
        lock_id = payload.get("lock_id")
        kind = payload.get("kind")
        if not isinstance(lock_id, str) or kind not in ACCESS_KINDS:
            return
        verdict = "allowed" if kind == "access_allowed" else "denied"
        self.last_access[lock_id] = {
            "summary": f"{verdict}: {payload.get('reason') or 'unknown'}",
            "allowed": kind == "access_allowed",
            "reason": payload.get("reason"),
            "at": payload.get("occurred_at"),
            "credential_kind": payload.get("credential_kind"),
            "access_method_id": payload.get("access_method_id"),
            "access_grant_id": payload.get("access_grant_id"),
            "event_id": payload.get("event_id"),
        }
        self.changed(lock_id)

    def forget(self, lock_id: str) -> None:
        self.status.pop(lock_id, None)
        self.last_access.pop(lock_id, None)
        self._counts.pop(lock_id, None)

    # --- documents ---------------------------------------------------------------------------
    def gateway_state(self, *, cached_counts: bool = False) -> JsonObject:
        """``cached_counts``: the credential totals from each lock's last document (those
        :meth:`documents` has just rebuilt are fresh), not one query per lock."""
        gw = self.gw
        cloud = gw.sync_loop.health
        trust = gw.trust.assess()
        totals: dict[str, int] = {}
        for lock_id in gw.locks:
            counts = self._counts.get(lock_id) if cached_counts else None
            if counts is None:
                counts = gw.store.sync_states.counts(lock_id)
            for state, n in counts.items():
                totals[state] = totals.get(state, 0) + n
        return {
            "gateway_id": gw.config.gateway_id,
            "identity": self.identity,
            "command_key": self.command_key,
            "command_key_sig": self.command_key_sig,
            "cloud": {
                "reachable": cloud.reachable,
                "last_sync_at": iso(cloud.last_sync_at),
                "last_full_sync_at": iso(cloud.last_full_sync_at),
                "last_error_code": cloud.last_error_code,
            },
            "clock": {
                "trusted": trust.trusted,
                "state": trust.state.value,
                "reasons": list(trust.reasons),
                "now": iso(trust.now),
                "wall": iso(trust.wall),
            },
            "store": {
                "error_code": "store_full" if gw.store.db.full else None,
                "full_since": iso(gw.store.db.full_since),
                "unsaved_events": len(gw.validator.unsaved),
            },
            "counts": {
                "locks": len(gw.locks),
                "locks_connected": sum(1 for r in gw.locks.values() if r.handle.connected),
                "events_pending": gw.store.outbox.count_pending(),
                "credentials": totals,
            },
            "sync_issues": self._sync_issues(),
        }

    def _sync_issues(self) -> list[JsonObject]:
        """The cloud data's sync issues, read again only when its version moved (every write
        of them bumps it in the same transaction, as does every write of the methods that
        name their grants)."""
        cloud = self.gw.store.cloud
        version = cloud.version
        if self._issues is None or self._issues[0] != version:
            self._issues = (version, [i.as_json() for i in issues_in(cloud)])
        return list(self._issues[1])

    def lock_state(self, lock_id: str, rec: LockReconciler) -> JsonObject:
        cfg = next((lock for lock in self.gw.config.locks if lock.id == lock_id), None)
        reading = self.status.get(lock_id)
        status = reading.status if reading else None
        health = rec.health
        return {
            "lock_id": lock_id,
            "name": cfg.display_name if cfg else lock_id,
            "driver": rec.handle.type_name,
            "connected": rec.handle.connected,
            "bolt": status.bolt.value if status else "unknown",
            "battery_percent": status.battery_percent if status else None,
            "tamper": status.tamper if status else None,
            "status_at": iso(reading.at) if reading else None,
            "last_pass_at": iso(health.last_pass_at),
            "last_error_code": health.last_error_code,
            "last_error": health.last_error,
            "credentials": self._lock_counts(lock_id),
            "last_access": self.last_access.get(lock_id),
        }

    def _lock_counts(self, lock_id: str) -> dict[str, int]:
        counts = self.gw.store.sync_states.counts(lock_id)
        self._counts[lock_id] = counts
        return counts

    def documents(self, locks: set[str] | None = None) -> dict[str, JsonObject]:
        """Every retained state document, by topic; with ``locks``, the gateway's and those
        locks' only (what :meth:`stale` says changed: one lock's pass rebuilds two
        documents, not one per lock)."""
        lock_docs = {
            self.topics.lock_state(lock_id): self.lock_state(lock_id, rec)
            for lock_id, rec in list(self.gw.locks.items())
            if locks is None or lock_id in locks
        }
        return {self.topics.state: self.gateway_state(cached_counts=True), **lock_docs}


Publish = Callable[[str, bytes, bool], Awaitable[None]]
"""(topic, payload, retain) -> publishes at QoS 1."""


def encode(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str).encode()


VOLATILE_KEYS = frozenset({"last_sync_at", "status_at", "last_pass_at", "now", "wall"})
"""Timestamps that move on every pass (and the gateway's clock readings, which move on every
rebuild); a change in them alone waits for the heartbeat."""

HEARTBEAT_SECONDS = 300.0


def significant(doc: object) -> object:
    """``doc`` without its volatile timestamps, at any depth."""
    if isinstance(doc, dict):
        return {k: significant(v) for k, v in doc.items() if k not in VOLATILE_KEYS}
    if isinstance(doc, list):
        return [significant(v) for v in doc]
    return doc


class RetainedState:
    """Publishes retained documents on real change, and each one again once per heartbeat."""

    def __init__(
        self,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        sign: Callable[[str, JsonObject], bytes] | None = None,
    ) -> None:
        self.heartbeat = heartbeat
        self._sign = sign
        """Signs a document for its topic (the gateway identity) just before it is sent: the
        bytes to send, the document's JSON with its ``sig``."""
        self._monotonic = monotonic
        self._sent: dict[str, tuple[object, float]] = {}
        """topic -> (the significant part last published, when)."""

    def reset(self) -> None:
        self._sent.clear()

    async def publish(self, publish: Publish, docs: dict[str, Any]) -> int:
        n = 0
        now = self._monotonic()
        for topic, doc in docs.items():
            key = significant(doc)  # compared as values: no serialising on every pass
            sent = self._sent.get(topic)
            if sent is not None and sent[0] == key and now - sent[1] < self.heartbeat:
                continue
            body = self._sign(topic, doc) if self._sign is not None else encode(doc)
            await publish(topic, body, True)
            self._sent[topic] = (key, now)
            n += 1
        return n

    async def clear(self, publish: Publish, topic: str) -> None:
        """Remove a retained document (an empty retained payload deletes it)."""
        await publish(topic, b"", True)
        self._sent.pop(topic, None)
