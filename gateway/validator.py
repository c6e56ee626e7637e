"""Offline credential decisions: allow or deny, always with a reason, always recorded.

When a lock's own memory cannot decide (a PIN it does not hold, a lock that is full) or an
operator asks for a dry run, the gateway decides from its local copy of the cloud data, without
the cloud. Reasons: ``valid`` (allow), ``valid_clock_tolerance`` (allow under the tolerance
policy), and for denials ``unknown_credential``, ``revoked``, ``not_for_this_entrance``,
``outside_window``, ``invalid_grant``, ``clock_untrusted``, ``locked_out``,
``unsupported_credential``. Every real decision becomes an access event in the outbox, in the
same transaction as the lockout bookkeeping.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drivers.base import CredentialKind
from gateway.clock import Clock
from gateway.config import TimeConfig
from gateway.events import AccessEvent
from gateway.lockout import LockoutPolicy
from gateway.models import AccessMethod, Grant
from gateway.planner import CloudView, LockScope
from gateway.store.db import StoreFullError
from gateway.store.store import Store
from gateway.timetrust import TimeTrust

log = logging.getLogger(__name__)

_EPOCH = datetime.min.replace(tzinfo=UTC)

FAILURES_THAT_COUNT = frozenset(
    {"unknown_credential", "revoked", "not_for_this_entrance", "outside_window"}
)

MAX_UNSAVED_EVENTS = 50_000
"""Decisions kept in memory while the disk is full (about 25 MB); beyond, the oldest go."""

ProofCheck = Callable[[AccessMethod, bytes | None, str], bool]
"""Mobile keys: verifies the phone's proof for this method at this lock."""


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reason: str
    lock_id: str
    kind: CredentialKind
    access_method_id: str | None = None
    access_grant_id: str | None = None
    user_identity_id: str | None = None
    detail: str = ""
    event_id: str | None = None


def _no_proofs(method: AccessMethod, proof: bytes | None, lock_id: str) -> bool:
    return False


class Validator:
    def __init__(
        self,
        store: Store,
        views: Callable[[], CloudView],
        scopes: dict[str, LockScope],
        clock: Clock,
        trust: TimeTrust,
        time_config: TimeConfig,
        lockouts: LockoutPolicy,
        proof_check: ProofCheck = _no_proofs,
    ) -> None:
        self._store = store
        self._views = views
        self._scopes = scopes
        self._clock = clock
        self._trust = trust
        self._time = time_config
        self._lockouts = lockouts
        self._proof_check = proof_check
        self.unsaved: deque[AccessEvent] = deque(maxlen=MAX_UNSAVED_EVENTS)
        """Decisions made while the disk was full, in order: :meth:`flush` records them."""
        self.dropped = 0

    def judge(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        *,
        proof: bytes | None = None,
        t: datetime | None = None,
    ) -> Decision:
        """The decision alone: nothing recorded, no lockout counted (benches, previews).
        What a door or an operator asks goes through :meth:`decide`."""
        return self._decide(kind, secret, lock_id, proof, t or self._clock.now())

    def decide(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        *,
        proof: bytes | None = None,
        dry_run: bool = False,
        tested_by: str | None = None,
        t: datetime | None = None,
    ) -> Decision:
        t = t or self._clock.now()
        decision = self._decide(kind, secret, lock_id, proof, t)
        if dry_run:
            return self._dry_run(decision, kind, lock_id, t, tested_by)
        event = AccessEvent(
            event_id=AccessEvent.new_id(),
            occurred_at=t,
            kind="access_allowed" if decision.allow else "access_denied",
            lock_id=lock_id,
            source="gateway",
            credential_kind=kind.value,
            access_method_id=decision.access_method_id,
            access_grant_id=decision.access_grant_id,
            user_identity_id=decision.user_identity_id,
            reason=decision.reason,
            detail=decision.detail or None,
        )
        try:
            self._record(decision, event, t)
        except StoreFullError:
            # The decision stands (the door must not wait for a disk); the event waits here
            # and the lockout count in memory (the store's Lockouts keep it).
            self._keep(event)
        return _with_event(decision, event.event_id)

    def _record(self, decision: Decision, event: AccessEvent, t: datetime) -> None:
        lock_id, kind = decision.lock_id, decision.kind
        with self._store.db.transaction():
            if decision.allow:
                self._lockouts.success(lock_id, kind, decision.access_method_id)
            elif decision.reason in FAILURES_THAT_COUNT:
                for lockout in self._lockouts.failure(
                    lock_id, kind, t, decision.access_method_id
                ):
                    log.warning(
                        "%s: %s until %s", lock_id, lockout.what, lockout.until.isoformat()
                    )
            self._store.outbox.add([event])

    def _keep(self, event: AccessEvent) -> None:
        if len(self.unsaved) == self.unsaved.maxlen:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("store_full: %d access events dropped so far", self.dropped)
        self.unsaved.append(event)

    def flush(self) -> int:
        """Record the decisions kept while the disk was full (raises StoreFullError if it
        still is); returns how many."""
        if not self.unsaved:
            return 0
        events = list(self.unsaved)
        with self._store.db.transaction():
            self._store.lockouts.flush()
            self._store.outbox.add(events)
        for _ in events:
            self.unsaved.popleft()
        log.info("%d access events decided while the store was full are recorded", len(events))
        return len(events)

    def _dry_run(
        self, decision: Decision, kind: CredentialKind, lock_id: str, t: datetime, who: str | None
    ) -> Decision:
        """A decision nothing acts on (an operator's ``test_credential``), still accounted for:
        a failure counts against the lockout like one at the keypad (so guessing through the
        dry run meets the same limit), a success relieves nothing, and a ``credential_tested``
        event records it — without naming the method, grant or user, so the events topic is no
        oracle either."""
        event = AccessEvent(
            event_id=AccessEvent.new_id(),
            occurred_at=t,
            kind="credential_tested",
            lock_id=lock_id,
            source="gateway",
            credential_kind=kind.value,
            reason=decision.reason,
            detail=f"dry run by operator {who}" if who else "dry run",
        )
        try:
            with self._store.db.transaction():
                if not decision.allow and decision.reason in FAILURES_THAT_COUNT:
                    for lockout in self._lockouts.failure(
                        lock_id, kind, t, decision.access_method_id
                    ):
                        log.warning(
                            "%s: %s until %s (dry runs)",
                            lock_id,
                            lockout.what,
                            lockout.until.isoformat(),
                        )
                self._store.outbox.add([event])
        except StoreFullError:
            self._keep(event)
        return _with_event(decision, event.event_id)

    def _decide(
        self, kind: CredentialKind, secret: bytes, lock_id: str, proof: bytes | None, t: datetime
    ) -> Decision:
        def deny(
            reason: str, m: AccessMethod | None = None, g: Grant | None = None, detail: str = ""
        ) -> Decision:
            return _decision(False, reason, lock_id, kind, m, g, detail)

        scope = self._scopes.get(lock_id)
        if scope is None:
            return deny("not_for_this_entrance", detail="unknown lock")
        lockout = self._lockouts.locked_until(lock_id, kind, t)
        if lockout is not None:
            return deny("locked_out", detail=f"{lockout.what} until {lockout.until.isoformat()}")
        view = self._views()
        # The live methods with this secret, from the view's in-memory index; the store is
        # asked only when none is live, to tell a revoked credential from an unknown one.
        live: list[tuple[AccessMethod, Grant]] = [
            (m, view.grants[m.grant_id])
            for m in view.by_secret.get((kind.value, secret), ())
            if m.grant_id is not None
        ]
        matches = [] if live else self._store.cloud.find_by_secret(kind.value, secret)
        if not live and not matches:
            return deny("unknown_credential")
        revoked: tuple[AccessMethod, Grant | None] | None = None
        for m in matches:
            g = self._store.cloud.grant(m.grant_id) if m.grant_id else None
            if m.revoked_at is not None or g is None or g.revoked_at is not None:
                revoked = revoked or (m, g)
                continue
            live.append((m, g))
        if not live:
            assert revoked is not None
            m, g = revoked
            why = (g.revoked_reason if g is not None else None) or m.revoked_reason or ""
            return deny("revoked", m, g, why)
        here = [(m, g) for m, g in live if view.serves(scope, g)]
        # The same code in several grants: judge them in the order the planner gives the slot
        # (the grant that starts first), so a decision names the holder the lock would name.
        here.sort(key=lambda mg: (mg[1].starts_at or _EPOCH, mg[1].grant_id))
        if not here:
            return deny("not_for_this_entrance", *live[0])
        best: Decision | None = None
        for m, g in here:
            d = self._judge(kind, m, g, lock_id, proof, t)
            if d.allow:
                return d
            best = best or d
        assert best is not None
        return best

    def _judge(
        self,
        kind: CredentialKind,
        m: AccessMethod,
        g: Grant,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
    ) -> Decision:
        if g.problem is not None:
            return _decision(False, "invalid_grant", lock_id, kind, m, g, g.problem)
        if kind is CredentialKind.MOBILE_KEY and not self._proof_check(m, proof, lock_id):
            return _decision(False, "bad_proof", lock_id, kind, m, g)
        bounded = g.starts_at is not None or g.ends_at is not None
        trust = self._trust.assess()
        if bounded and not trust.trusted:
            if self._time.policy == "deny_time_bounded":
                return _decision(
                    False, "clock_untrusted", lock_id, kind, m, g, ",".join(trust.reasons)
                )
            slack = timedelta(seconds=self._time.tolerance_s)
            inside = (g.starts_at is None or t >= g.starts_at - slack) and (
                g.ends_at is None or t < g.ends_at + slack
            )
            if inside:
                return _decision(True, "valid_clock_tolerance", lock_id, kind, m, g)
            return _decision(False, "outside_window", lock_id, kind, m, g, "clock untrusted")
        if g.starts_at is not None and t < g.starts_at:
            return _decision(False, "outside_window", lock_id, kind, m, g, "not yet valid")
        if g.ends_at is not None and t >= g.ends_at:
            return _decision(False, "outside_window", lock_id, kind, m, g, "expired")
        return _decision(True, "valid", lock_id, kind, m, g)


def _decision(
    allow: bool,
    reason: str,
    lock_id: str,
    kind: CredentialKind,
    m: AccessMethod | None,
    g: Grant | None,
    detail: str = "",
) -> Decision:
    return Decision(
        allow=allow,
        reason=reason,
        lock_id=lock_id,
        kind=kind,
        access_method_id=m.method_id if m else None,
        access_grant_id=(g.grant_id if g else (m.grant_id if m else None)),
        user_identity_id=g.user_identity_id if g else None,
        detail=detail,
    )


def _with_event(d: Decision, event_id: str) -> Decision:
    return Decision(
        d.allow,
        d.reason,
        d.lock_id,
        d.kind,
        d.access_method_id,
        d.access_grant_id,
        d.user_identity_id,
        d.detail,
        event_id,
    )
