"""What the views show, read from the running site at one moment into frozen records.

Two sides are read: the gateway's (its reconcilers, the per-credential sync state in its store,
its outbox of access events, its cloud sync health) and the simulated hardware's (what each
lock's memory holds, its bolt). Credentials are labelled with the person's name and a masked
secret (``PIN ••••13``); no record here holds a secret.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.store.sync_state import SyncStatus
from lockgate_sim.demo.scenario import LINK_LABEL, group_of, method_text
from lockgate_sim.demo.site import DemoSite

MAX_EVENTS = 200
STATE_ORDER = ("applied", "pending", "failed", "scheduled", "removing")


@dataclass(frozen=True, slots=True)
class Label:
    person: str
    what: str
    """``PIN ••••13``, ``card ••••83``, ``phone key``."""
    group: str | None = None
    """Credentials of a group (the staff) are shown as one line per lock."""

    def __str__(self) -> str:
        return f"{self.person} · {self.what}"


UNKNOWN = Label("someone", "a credential")


@dataclass(frozen=True, slots=True)
class LockRow:
    lock_id: str
    name: str
    link: str
    connected: bool
    bolt: str
    states: Mapping[str, int]
    held: int
    """Credentials in the lock's own memory (the simulated firmware)."""
    error: str | None


@dataclass(frozen=True, slots=True)
class CredRow:
    lock_id: str
    method_id: str
    label: Label
    state: str
    error_code: str | None
    on_lock: bool


@dataclass(frozen=True, slots=True)
class Progress:
    lock_id: str
    link: str
    done: int
    """Credentials to put that the lock's memory holds already ..."""
    total: int
    """... out of these (0: nothing to put)."""
    removing: int


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    at: datetime | None
    lock_id: str
    kind: str
    label: Label
    reason: str
    source: str


def in_time_order(events: Iterable[EventRow]) -> tuple[EventRow, ...]:
    """Events by when they happened, not by when the gateway heard of them.

    A lock that decides on its own reports at the next read of its journal (a BLE lock when
    the gateway next connects), so the outbox holds its event after decisions the gateway made
    later. Every ``occurred_at`` is UTC on the same time line (in the demo the locks and the
    gateway's trusted clock read the one system clock). Ties keep the order of recording.
    """
    return tuple(sorted(events, key=lambda e: (e.at is None, e.at or _EPOCH, e.seq)))


@dataclass(frozen=True, slots=True)
class CloudRow:
    url: str
    reachable: bool | None
    last_sync_at: datetime | None
    grants: int
    methods: int
    error: str | None


@dataclass(frozen=True, slots=True)
class MqttRow:
    address: str
    events: int
    availability: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    elapsed: float
    now: datetime
    cloud: CloudRow
    locks: tuple[LockRow, ...]
    creds: tuple[CredRow, ...]
    progress: tuple[Progress, ...]
    events: tuple[EventRow, ...]
    """The latest access events the gateway recorded, oldest first."""
    event_count: int
    mqtt: MqttRow | None


class Sampler:
    """Reads :class:`Snapshot` s from a site; remembers labels of credentials that went away."""

    def __init__(self, site: DemoSite, started: float | None = None) -> None:
        self.site = site
        self.started = time.monotonic() if started is None else started
        self._labels: dict[str, Label] = {}
        self._version = -1
        self._links = {lock.lock_id: LINK_LABEL[lock.link] for lock in site.locks}

    def label(self, method_id: str | None) -> Label:
        if method_id is None:
            return UNKNOWN
        return self._labels.get(method_id, Label("someone", f"credential {method_id[:8]}"))

    def _relabel(self) -> None:
        view = self.site.gateway.views.current()
        if view.version == self._version:
            return
        self._version = view.version
        users = self.site.cloud.state.user_identities
        for grant_id, methods in view.by_grant.items():
            grant = view.grants.get(grant_id)
            user: Any = (
                users.get(grant.user_identity_id) if grant and grant.user_identity_id else None
            )
            person = str(user.get("full_name")) if user else "someone"
            group = group_of(grant.display_name) if grant else None
            for m in methods:
                self._labels[m.method_id] = Label(person, method_text(m.mode, m.secret), group)

    def take(self) -> Snapshot:
        self._relabel()
        site = self.site
        gw = site.gateway
        locks: list[LockRow] = []
        creds: list[CredRow] = []
        progress: list[Progress] = []
        for lock in site.locks:
            rec = gw.locks.get(lock.lock_id)
            if rec is None:
                continue
            sim = site.sims[lock.lock_id]
            held = {c.credential_id for c in sim.list_credentials()}
            states = gw.store.sync_states.for_lock(lock.lock_id)
            counts = Counter(s.state.value for s in states.values())
            locks.append(
                LockRow(
                    lock.lock_id,
                    lock.name,
                    self._links[lock.lock_id],
                    rec.handle.connected,
                    sim.bolt.value,
                    {state: counts.get(state, 0) for state in STATE_ORDER},
                    len(held),
                    rec.health.last_error_code,
                )
            )
            for mid, s in sorted(states.items(), key=lambda kv: str(self.label(kv[0]))):
                creds.append(
                    CredRow(
                        lock.lock_id, mid, self.label(mid), s.state.value, s.error_code, mid in held
                    )
                )
            wanted = {
                mid
                for mid, s in states.items()
                if s.state in (SyncStatus.APPLIED, SyncStatus.PENDING)
            }
            pending = counts.get("pending", 0)
            removing = counts.get("removing", 0)
            if pending or removing:
                done, total = (len(wanted & held), len(wanted)) if pending else (0, 0)
                link = self._links[lock.lock_id]
                progress.append(Progress(lock.lock_id, link, done, total, removing))
        entries = gw.store.outbox.entries()
        events = in_time_order(self._event(e.seq, e.payload) for e in entries[-MAX_EVENTS:])
        health = gw.sync_loop.health
        view = gw.views.current()
        cloud = CloudRow(
            site.cloud.url,
            health.reachable,
            health.last_sync_at,
            len(view.grants),
            sum(len(ms) for ms in view.by_grant.values()),
            health.last_error_code,
        )
        mqtt: MqttRow | None = None
        if site.broker is not None and site.watch is not None:
            mqtt = MqttRow(
                f"{site.broker.host}:{site.broker.port}",
                site.watch.events,
                site.watch.availability,
                site.watch.error,
            )
        return Snapshot(
            time.monotonic() - self.started,
            gw.clock.now(),
            cloud,
            tuple(locks),
            tuple(creds),
            tuple(progress),
            events,
            len(entries),
            mqtt,
        )

    def _event(self, seq: int, payload: Mapping[str, Any]) -> EventRow:
        at_text = payload.get("occurred_at")
        at = datetime.fromisoformat(at_text) if isinstance(at_text, str) else None
        method = payload.get("access_method_id")
        if isinstance(method, str):
            label = self.label(method)
        else:
            kind = payload.get("credential_kind")
            what = {"code": "PIN", "card": "card", "mobile_key": "phone key"}
            label = Label("someone", f"an unknown {what.get(str(kind), 'credential')}")
        return EventRow(
            seq,
            at,
            str(payload.get("lock_id", "")),
            str(payload.get("kind", "")),
            label,
            str(payload.get("reason", "")),
            str(payload.get("source", "")),
        )
