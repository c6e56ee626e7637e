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
from datetime import UTC, datetime, timedelta

import msgspec

from drivers.base import CredentialKind
from gateway.clock import Clock
from gateway.config import TimeConfig
from gateway.events import AccessEvent
from gateway.lockout import KIND_VALUE, LockoutPolicy
from gateway.models import AccessMethod, Grant
from gateway.planner import CloudView, LockScope
from gateway.store.db import StoreFullError
from gateway.store.retired import RetiredSecrets, read_retired
from gateway.store.store import Store
from gateway.timetrust import HonestClock, TimeTrust

log = logging.getLogger(__name__)

_EPOCH = datetime.min.replace(tzinfo=UTC)

FAILURES_THAT_COUNT = frozenset(
    {"unknown_credential", "revoked", "not_for_this_entrance", "outside_window"}
)

MAX_UNSAVED_EVENTS = 50_000
"""Decisions kept in memory while the disk is full (about 25 MB); beyond, the oldest go."""

ProofCheck = Callable[[AccessMethod, bytes | None, str], bool]
"""Mobile keys: verifies the phone's proof for this method at this lock."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """An immutable record, one per decision (a msgspec struct: built in half the time of a
    ``NamedTuple`` made without its Python-level ``__new__``; its fields are plain values, so
    the collector need not track it)."""

    allow: bool
    reason: str
    lock_id: str
    kind: CredentialKind
    access_method_id: str | None = None
    access_grant_id: str | None = None
    user_identity_id: str | None = None
    detail: str = ""
    event_id: str | None = None


_MOBILE_KEY = CredentialKind.MOBILE_KEY
"""A module constant: an enum member read off its class costs four times a global."""

_new_id = AccessEvent.new_id
_replace = msgspec.structs.replace


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
        self._reading = (
            trust.reading if isinstance(clock, HonestClock) and clock.trust is trust else None
        )
        """On the daemon's clock, the time and the trust's verdict come from one reading (the
        clock is read, and the kernel asked, once a decision, not twice)."""
        self._retired: RetiredSecrets | None = None
        """The store's retired secret indexes, for the data version they name (see
        :meth:`refresh`): lets an unknown secret be refused without a query."""
        self._spaces_of: CloudView | None = None
        self._spaces: dict[str, tuple[LockScope, frozenset[str]]] = {}
        """Per lock, its scope and the spaces it serves in :attr:`_spaces_of` (a scope
        replaced under the same lock id is worked out again)."""

    async def refresh(self) -> None:
        """Read which secrets the store holds for methods that are not live, at the current
        data version, in slices (after every change of the cloud data). Until it has, a secret
        no live method holds is looked up in the store, as it always could be."""
        retired = await read_retired(self._store.db, lambda: self._store.cloud.version)
        if retired is not None:
            self._retired = retired

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
        if t is not None:
            return self._decide(kind, secret, lock_id, proof, t, None)
        reading = self._reading
        if reading is not None:
            t, distrust = reading()  # (not a starred call: that costs 8% of a decision)
            return self._decide(kind, secret, lock_id, proof, t, distrust)
        return self._decide(kind, secret, lock_id, proof, self._clock.now(), None)

    def _now(self, t: datetime | None) -> tuple[datetime, tuple[str, ...] | None]:
        """The decision's time, and the clock's verdict if it came with it (``None``: ask the
        trust when a bounded grant needs it)."""
        if t is not None:
            return t, None
        if self._reading is not None:
            return self._reading()
        return self._clock.now(), None

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
        """Decide and record, waiting here for the commit (this thread blocks): for callers
        that cannot await (an operator's command, tests). A door's request goes through
        :meth:`decide_durably`, which commits with the decisions made meanwhile."""
        decision, event = self._account(kind, secret, lock_id, proof, dry_run, tested_by, t)
        try:
            self._store.decisions.record_now([event])
        except StoreFullError:
            self._keep(event)
        return decision

    async def decide_durably(
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
        """Decide and record; returns once the decision is durable (group commit: decisions
        made while a commit is under way go in the next one). Its lockout counting is done
        before this awaits, so the next decision, even in the same group, counts it."""
        decision, event = self._account(kind, secret, lock_id, proof, dry_run, tested_by, t)
        try:
            await self._store.decisions.record([event])
        except StoreFullError:
            self._keep(event)
        return decision

    def _account(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        proof: bytes | None,
        dry_run: bool,
        tested_by: str | None,
        t: datetime | None,
    ) -> tuple[Decision, AccessEvent]:
        """The decision, counted against the lockout (in memory, written with its event), and
        the event that records it. A failure counts; a success takes back the failures that
        named the same method. If the disk is full the decision stands (the door must not wait
        for a disk): the event waits in :attr:`unsaved`, the lockout count in memory."""
        t, distrust = self._now(t)
        event_id = _new_id()
        decision = self._decide(kind, secret, lock_id, proof, t, distrust, event_id)
        if decision.event_id is None:  # not the plain allow, which carries it already
            decision = _with_event(decision, event_id)
        allow = decision.allow
        if dry_run:
            event = self._dry_run_event(decision, kind, lock_id, t, tested_by)
        else:
            event = AccessEvent(  # positional: a third of the keywords' cost
                event_id,
                t,
                "access_allowed" if allow else "access_denied",
                lock_id,
                "gateway",
                KIND_VALUE[kind],
                decision.access_method_id,
                decision.access_grant_id,
                decision.user_identity_id,
                decision.reason,
                None,
                decision.detail or None,
            )
        if allow:
            if not dry_run:
                self._lockouts.success(lock_id, kind, decision.access_method_id)
        elif decision.reason in FAILURES_THAT_COUNT:
            for lockout in self._lockouts.failure(lock_id, kind, t, decision.access_method_id):
                log.warning(
                    "%s: %s until %s%s",
                    lock_id,
                    lockout.what,
                    lockout.until.isoformat(),
                    " (dry runs)" if dry_run else "",
                )
        return decision, event

    def _keep(self, event: AccessEvent) -> None:
        if len(self.unsaved) == self.unsaved.maxlen:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("store_full: %d access events dropped so far", self.dropped)
        self.unsaved.append(event)

    def flush(self) -> int:
        """Record the decisions kept while the disk was full, with every lockout state of this
        run (raises StoreFullError if it still is); returns how many decisions."""
        events = list(self.unsaved)
        self._store.lockouts.flush()
        self._store.decisions.record_now(events)
        for _ in events:
            self.unsaved.popleft()
        if events:
            log.info(
                "%d access events decided while the store was full are recorded", len(events)
            )
        return len(events)

    @staticmethod
    def _dry_run_event(
        decision: Decision, kind: CredentialKind, lock_id: str, t: datetime, who: str | None
    ) -> AccessEvent:
        """A decision nothing acts on (an operator's ``test_credential``), still accounted for:
        a failure counts against the lockout like one at the keypad (so guessing through the
        dry run meets the same limit), a success relieves nothing, and a ``credential_tested``
        event records it — without naming the method, grant or user, so the events topic is no
        oracle either."""
        return AccessEvent(
            event_id=decision.event_id or AccessEvent.new_id(),
            occurred_at=t,
            kind="credential_tested",
            lock_id=lock_id,
            source="gateway",
            credential_kind=kind.value,
            reason=decision.reason,
            detail=f"dry run by operator {who}" if who else "dry run",
        )

    def _decide(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
        distrust: tuple[str, ...] | None,
        event_id: str | None = None,
    ) -> Decision:
        """The decision (``event_id``: the plain allow carries it; any other decision leaves
        it to the caller, :func:`_with_event`)."""
        scope = self._scopes.get(lock_id)
        if scope is None:
            return _decision(False, "not_for_this_entrance", lock_id, kind, detail="unknown lock")
        lockout = self._lockouts.locked_until(lock_id, kind, t)
        if lockout is not None:
            detail = f"{lockout.what} until {lockout.until.isoformat()}"
            return _decision(False, "locked_out", lock_id, kind, detail=detail)
        view = self._views()
        # The usual case: the secret's one live method, with everything its decision needs,
        # in the view's plain index (see CloudView.plain). What it cannot settle alone (a
        # grant for this lock through an entrance or a device, or for none of its spaces; a
        # bounded grant on a clock not trusted) goes to the full path, which decides every
        # case: the checks here are its checks, in its order, for this case.
        entry = view.plain[kind].get(secret)
        if entry is None:
            return self._full(kind, secret, lock_id, proof, t, distrust, view, scope)
        mid, gid, uid, grant_spaces, starts, ends, _ = entry
        if view is not self._spaces_of:
            self._spaces_of, self._spaces = view, {}
        spaces = self._spaces.get(lock_id)
        if spaces is None or spaces[0] is not scope:
            spaces = self._spaces[lock_id] = (scope, view.lock_spaces(scope))
        if spaces[1].isdisjoint(grant_spaces):
            return self._full(kind, secret, lock_id, proof, t, distrust, view, scope)
        if starts is not None or ends is not None:  # (else the clock does not matter)
            if distrust is None:
                distrust = self._trust.distrust()
            if distrust:
                return self._full(kind, secret, lock_id, proof, t, distrust, view, scope)
            if starts is not None and t < starts:
                return Decision(
                    False, "outside_window", lock_id, kind, mid, gid, uid, "not yet valid"
                )
            if ends is not None and t >= ends:
                return Decision(False, "outside_window", lock_id, kind, mid, gid, uid, "expired")
        return Decision(True, "valid", lock_id, kind, mid, gid, uid, "", event_id)

    def _full(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
        distrust: tuple[str, ...] | None,
        view: CloudView,
        scope: LockScope,
    ) -> Decision:
        """The decision on every path (after the lock and its lockouts): the live methods with
        this secret, from the view's in-memory indexes (the kind is a StrEnum: it hashes as
        its value); the store is asked only when none is live, to tell a revoked credential
        from an unknown one."""
        found = view.methods_with(kind, secret)
        if not found:
            return self._not_live(kind, secret, lock_id, proof, t, view, scope, distrust)
        live = [(m, view.grants[m.grant_id]) for m in found if m.grant_id is not None]
        return self._here(kind, lock_id, proof, t, view, scope, live, distrust)

    def _not_live(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
        view: CloudView,
        scope: LockScope,
        distrust: tuple[str, ...] | None,
    ) -> Decision:
        """No live method in the view holds this secret: revoked, unknown, or (only if the
        store holds a change the view has not caught up with) live after all. When the
        retired secrets of the view's version are known and this one is not among them, the
        store holds it nowhere: unknown, without a query."""
        retired = self._retired
        if (
            retired is not None
            and retired.version == view.version
            and not (retired and retired.may_hold(self._store.box.index(kind.value, secret)))
        ):
            return _decision(False, "unknown_credential", lock_id, kind)
        live: list[tuple[AccessMethod, Grant]] = []
        revoked: tuple[AccessMethod, Grant | None] | None = None
        for m in self._store.cloud.find_by_secret(kind.value, secret):
            g = self._store.cloud.grant(m.grant_id) if m.grant_id else None
            if m.revoked_at is not None or g is None or g.revoked_at is not None:
                revoked = revoked or (m, g)
                continue
            live.append((m, g))
        if live:
            return self._here(kind, lock_id, proof, t, view, scope, live, distrust)
        if revoked is None:
            return _decision(False, "unknown_credential", lock_id, kind)
        m, g = revoked
        why = (g.revoked_reason if g is not None else None) or m.revoked_reason or ""
        return _decision(False, "revoked", lock_id, kind, m, g, why)

    def _here(
        self,
        kind: CredentialKind,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
        view: CloudView,
        scope: LockScope,
        live: list[tuple[AccessMethod, Grant]],
        read: tuple[str, ...] | None,
    ) -> Decision:
        """Judge the live methods with this secret that are meant for this lock (``read``: the
        clock's verdict read with the decision's time, if it was)."""
        spaces = self._lock_spaces(view, scope)
        here = [(m, g) for m, g in live if view.serves(scope, g, spaces)]
        if not here:
            return _decision(False, "not_for_this_entrance", lock_id, kind, *live[0])
        if len(here) > 1:
            # The same code in several grants: judge them in the order the planner gives the
            # slot (the grant that starts first), so a decision names the holder the lock
            # would name.
            here.sort(key=lambda mg: (mg[1].starts_at or _EPOCH, mg[1].grant_id))
        best: Decision | None = None
        distrust: tuple[str, ...] | None = None
        for m, g in here:
            if distrust is None and (g.starts_at is not None or g.ends_at is not None):
                # once a decision, for a bounded grant only
                distrust = read if read is not None else self._trust.distrust()
            d = self._judge(kind, m, g, lock_id, proof, t, distrust)
            if d.allow:
                return d
            best = best or d
        assert best is not None
        return best

    def _lock_spaces(self, view: CloudView, scope: LockScope) -> frozenset[str]:
        """The spaces this lock serves in this view, worked out once per view and lock."""
        if view is not self._spaces_of:
            self._spaces_of, self._spaces = view, {}
        spaces = self._spaces.get(scope.lock_id)
        if spaces is None or spaces[0] is not scope:
            spaces = self._spaces[scope.lock_id] = (scope, view.lock_spaces(scope))
        return spaces[1]

    def _judge(
        self,
        kind: CredentialKind,
        m: AccessMethod,
        g: Grant,
        lock_id: str,
        proof: bytes | None,
        t: datetime,
        distrust: tuple[str, ...] | None,
    ) -> Decision:
        if g.problem is not None:
            return _decision(False, "invalid_grant", lock_id, kind, m, g, g.problem)
        if kind is _MOBILE_KEY and not self._proof_check(m, proof, lock_id):
            return _decision(False, "bad_proof", lock_id, kind, m, g)
        if distrust:  # a bounded grant, and the clock is not trusted
            if self._time.policy == "deny_time_bounded":
                return _decision(False, "clock_untrusted", lock_id, kind, m, g, ",".join(distrust))
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
    m: AccessMethod | None = None,
    g: Grant | None = None,
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
    return _replace(d, event_id=event_id)
