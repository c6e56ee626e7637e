"""What each lock should hold at time *t*: a pure function of the cloud data and the clock.

:class:`CloudView` indexes one version of the store's cloud data (grants by space, entrance and
device; methods by grant) so that planning 50 locks does not scan 30,000 methods 50 times.
:func:`plan` returns, for one lock, the credentials due now (with their windows attached when
the lock enforces windows itself, rounded inward to whole seconds), those due later, those
waiting for Seam (``not_issued``), those riding on the same user's slot for the same code
(``shared``), those that cannot go on (with a reason code: ``invalid_grant``,
``invalid_method``, ``unsupported``, ``code_rule``, ``duplicate_code_on_device`` /
``duplicate_credential_on_device``, ``capacity``), and the next moment the answer changes by
time alone.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypeVar

from drivers.base import Capabilities, Credential, CredentialKind, TimeWindow
from gateway.cooperative import Slicer, settle
from gateway.models import AccessMethod, Entrance, Grant

TagFn = Callable[..., bytes]
_V = TypeVar("_V")
STEP = 16
"""Groups or credentials made between two yields (each takes microseconds)."""
LONG_LIVED_PLAN = 1000
"""A shared plan of this many credentials is settled (see :func:`gateway.cooperative.settle`)."""


class Plain(NamedTuple):
    """A secret held by exactly one live method, of a kind in :data:`PLAIN_KINDS`, whose
    grant has no problem: what the validator's usual decision needs of it, in one place (see
    :attr:`CloudView.plain`)."""

    method_id: str
    grant_id: str
    user_identity_id: str | None
    space_ids: frozenset[str]
    starts_at: datetime | None
    ends_at: datetime | None
    method: AccessMethod


PLAIN_KINDS = frozenset({CredentialKind.CODE, CredentialKind.CARD})
"""The kinds a :class:`Plain` entry is made for (a mobile key always needs its proof)."""


def plain_entry(
    m: AccessMethod, g: Grant, space_sets: dict[frozenset[str], frozenset[str]] | None = None
) -> Plain | None:
    """The :class:`Plain` entry of ``m`` (live, with the live grant ``g``) if it were the only
    live method with its secret; ``None`` if a decision on it needs the full path. With
    ``space_sets``, its spaces are the one object there equal to the grant's (put there if
    none is)."""
    if m.mode not in PLAIN_KINDS or g.problem is not None:
        return None
    spaces = g.space_ids
    if space_sets is not None:
        spaces = space_sets.setdefault(spaces, spaces)
    return Plain(m.method_id, g.grant_id, g.user_identity_id, spaces, g.starts_at, g.ends_at, m)


@dataclass(frozen=True, slots=True)
class LockScope:
    lock_id: str
    space_ids: frozenset[str]
    entrance_ids: frozenset[str]
    device_ids: frozenset[str]


class CloudView:
    def __init__(
        self,
        grants: dict[str, Grant],
        methods: Iterable[AccessMethod],
        entrances: Iterable[Entrance],
        version: int = 0,
    ) -> None:
        for _ in self._index(grants, methods, entrances, version):
            pass

    @classmethod
    async def built(
        cls,
        grants: dict[str, Grant],
        methods: Iterable[AccessMethod],
        entrances: Iterable[Entrance],
        version: int = 0,
        slicer: Slicer | None = None,
    ) -> CloudView:
        """The same view, built in slices that give the event loop back (50,000 grants)."""
        slicer = slicer or Slicer()
        view = cls.__new__(cls)
        for _ in view._index(grants, methods, entrances, version):
            await slicer.tick()
        return view

    def _index(
        self,
        grants: dict[str, Grant],
        methods: Iterable[AccessMethod],
        entrances: Iterable[Entrance],
        version: int,
    ) -> Iterator[None]:
        """Index the data, yielding every :data:`STEP` items (the caller decides when to
        pause)."""
        self._start(version)
        self.grants = grants
        self.by_grant: dict[str, list[AccessMethod]] = defaultdict(list)
        self.grant_of: dict[str, str] = {}
        """Access method id -> its grant id (the lock's audit log names methods only)."""
        self.method_by_id: dict[str, AccessMethod] = {}
        """The methods indexed here (live, with a grant id) by id."""
        self.by_secret: dict[tuple[str, bytes], list[AccessMethod]] = {}
        """(mode, secret) -> the live methods with that secret whose grant is live, for the
        secrets :attr:`plain` does not hold (:meth:`methods_with` asks both): the validator's
        offline decisions look credentials up here, not in SQLite."""
        self.plain: dict[str, dict[bytes, Plain]] = {k: {} for k in CredentialKind}
        """Per kind (each :class:`CredentialKind`), secret -> its :class:`Plain` entry, for
        each secret held by exactly one live method of a kind in :data:`PLAIN_KINDS` whose
        grant has no problem (such a secret is not in :attr:`by_secret`): the validator's
        usual decision is one lookup here. Mobile keys have none."""
        self.space_sets: dict[frozenset[str], frozenset[str]] = {}
        """The sets of spaces of the :attr:`plain` entries, one object for each distinct set
        (entries share it): a decision reads its entry's set, and a few sets read by every
        decision stay in the CPU's cache where one set per grant would not (a decision on a
        site's 100,000 credentials: 8% less time)."""
        for n, m in enumerate(methods, 1):
            if m.grant_id is not None and m.revoked_at is None:
                self.by_grant[m.grant_id].append(m)
                self.grant_of[m.method_id] = m.grant_id
                self.method_by_id[m.method_id] = m
                live = grants.get(m.grant_id)
                if m.secret is not None and live is not None and live.revoked_at is None:
                    self._add_secret(m, m.secret, live)
            if not n % STEP:
                yield None
        self.user_of: dict[str, str | None] = {}
        """Grant id -> its user identity (for access events from a lock's log)."""
        self.entrance_spaces = {e.entrance_id: e.space_ids for e in entrances}
        self.grants_by_space: dict[str, set[str]] = defaultdict(set)
        self.grants_by_entrance: dict[str, set[str]] = defaultdict(set)
        self.grants_by_device: dict[str, set[str]] = defaultdict(set)
        for n, g in enumerate(grants.values(), 1):
            self.user_of[g.grant_id] = g.user_identity_id
            if not n % STEP:
                yield None
            if g.revoked_at is not None:
                continue
            for s in g.space_ids:
                self.grants_by_space[s].add(g.grant_id)
            for e in g.entrance_ids:
                self.grants_by_entrance[e].add(g.grant_id)
            for d in g.device_ids:
                self.grants_by_device[d].add(g.grant_id)

    def _start(self, version: int) -> None:
        """The caches of a view of ``version`` (empty), before its data is indexed."""
        self.version = version
        self.plans: dict[tuple[object, ...], tuple[datetime, Plan]] = {}
        """Plans of this version shared by locks of the same scope (see :func:`plan_shared`)."""
        self.credentials: dict[tuple[str, datetime | None, datetime | None, bool], Credential]
        self.credentials = {}
        """This version's credentials by ``(method id, window start, window end, whether the
        window is attached)``, built (and tagged) once for all the locks that hold them: within
        one version a method's kind and secret are fixed."""
        self.inherited: dict[tuple[str, datetime | None, datetime | None, bool], Credential]
        self.inherited = {}
        """The previous version's :attr:`credentials` (see :meth:`inherit`)."""
        self.before: _Before | None = None
        """The previous version's plans and what changed since (see :meth:`inherit`)."""
        self.last_plans: dict[tuple[object, ...], tuple[datetime, Plan]] = {}
        """The previous version's plans (see :func:`_kept`)."""
        self._planning = asyncio.Lock()
        self.changed_since: tuple[CloudView, frozenset[str]] | None = None
        """Set by an incremental build (:mod:`gateway.view_update`): the view it was built
        from and the ids of the grants whose record or live methods may differ from it
        (a superset), so :meth:`inherit` need not compare every grant again."""

    def inherit(self, previous: CloudView | None) -> None:
        """Take credentials from ``previous`` (the view this one replaces) where a method's
        kind, secret and window are unchanged, instead of tagging them again: after a change
        to 1% of the grants, 99% of the credentials are the same. Only the last version's are
        kept (never a chain), and each is checked against the method when taken.

        Also keeps ``previous``'s plans and the grants whose record or live methods differ
        between the two (:class:`_Before`), so that :func:`plan_shared` can patch a plan of
        the last version instead of making it again (see :func:`_patched`)."""
        self.inherited = previous.credentials if previous is not None else {}
        self.last_plans = previous.plans if previous is not None else {}
        self.before = None
        known, self.changed_since = self.changed_since, None  # (it holds the old view)
        if (
            previous is not None
            and previous.plans
            and previous.entrance_spaces == self.entrance_spaces
        ):
            changed = known[1] if known is not None and known[0] is previous else None
            self.before = _Before.between(previous, self, changed)

    def _add_secret(self, m: AccessMethod, secret: bytes, g: Grant) -> None:
        """Index the live method ``m`` (of the live grant ``g``) by its secret: in
        :attr:`plain` while it is the only one with that secret and has a :class:`Plain`
        entry, else in :attr:`by_secret` (the first one moved there when a second comes)."""
        plain = self.plain.get(m.mode)  # (a mode that is a kind)
        key = (m.mode, secret)
        if plain is not None:
            was = plain.pop(secret, None)
            if was is not None:
                self.by_secret[key] = [was.method]
            elif key not in self.by_secret:
                entry = plain_entry(m, g, self.space_sets)
                if entry is not None:
                    plain[secret] = entry
                    return
        self.by_secret.setdefault(key, []).append(m)

    def methods_with(self, mode: str, secret: bytes) -> list[AccessMethod]:
        """The live methods with this secret whose grant is live (none: an empty list)."""
        plain = self.plain.get(mode)
        entry = plain.get(secret) if plain is not None else None
        if entry is not None:
            return [entry.method]
        return self.by_secret.get((mode, secret), [])

    def lock_spaces(self, scope: LockScope) -> frozenset[str]:
        extra = (s for e in scope.entrance_ids for s in self.entrance_spaces.get(e, ()))
        return scope.space_ids | frozenset(extra)

    def grants_for(self, scope: LockScope) -> set[str]:
        ids: set[str] = set()
        for s in self.lock_spaces(scope):
            ids |= self.grants_by_space.get(s, set())
        for e in scope.entrance_ids:
            ids |= self.grants_by_entrance.get(e, set())
        for d in scope.device_ids:
            ids |= self.grants_by_device.get(d, set())
        return ids

    def serves(self, scope: LockScope, grant: Grant, spaces: frozenset[str] | None = None) -> bool:
        """Whether ``grant`` opens this lock (``spaces``: its :meth:`lock_spaces`, if known)."""
        return bool(
            grant.space_ids & (self.lock_spaces(scope) if spaces is None else spaces)
            or grant.entrance_ids & scope.entrance_ids
            or grant.device_ids & scope.device_ids
        )


PATCH_MAX_SHARE = 0.1
"""A new version's plans are patched from the last version's only while at most this share of
the grants changed (and always up to :data:`PATCH_MIN`); beyond it they are made afresh."""
PATCH_MIN = 64


@dataclass(frozen=True, slots=True)
class _Before:
    """What a view keeps of the one it replaced: that view's plans, the ids of the grants that
    changed since (record, or live methods, differ; or present in only one of the two), and
    their records and live methods there. Every other grant is the same, with the same
    methods, in both versions."""

    plans: dict[tuple[object, ...], tuple[datetime, Plan]]
    changed: frozenset[str]
    grants: dict[str, Grant]
    methods: dict[str, list[AccessMethod]]

    @classmethod
    def between(
        cls, old: CloudView, new: CloudView, known: frozenset[str] | None = None
    ) -> _Before | None:
        """``None`` when more grants changed than :data:`PATCH_MAX_SHARE` of them: patching
        would cost what planning afresh does, and unlike a plan made from scratch it is not
        sliced (a first full sync after an empty start changed every grant: 64 ms on the
        loop with 50,000 of them). ``known``: a superset of the grants that changed, if the
        caller knows one (every other grant is then taken as the same, not compared)."""
        limit = max(PATCH_MIN, int(max(len(old.grants), len(new.grants)) * PATCH_MAX_SHARE))
        if abs(len(new.grants) - len(old.grants)) > limit:
            return None
        changed: set[str] = set()
        old_grants, old_by = old.grants, old.by_grant
        new_by = new.by_grant
        if known is not None:
            if len(known) > limit:
                return None
            return cls(
                old.plans,
                known,
                {gid: old_grants[gid] for gid in known if gid in old_grants},
                {gid: list(old_by.get(gid, ())) for gid in known},
            )
        for gid, g in new.grants.items():
            was = old_grants.get(gid)
            # (list equality takes identical items as equal without comparing them)
            if (was is not g and was != g) or old_by.get(gid, ()) != new_by.get(gid, ()):
                changed.add(gid)
                if len(changed) > limit:
                    return None
        changed.update(gid for gid in old_grants if gid not in new.grants)
        if len(changed) > limit:
            return None
        return cls(
            old.plans,
            frozenset(changed),
            {gid: old_grants[gid] for gid in changed if gid in old_grants},
            {gid: list(old_by.get(gid, ())) for gid in changed},
        )


@dataclass(slots=True)
class Plan:
    desired: dict[str, Credential] = field(default_factory=dict)
    scheduled: dict[str, datetime] = field(default_factory=dict)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Not pushed until Seam says more: ``(code, sentence)``, e.g. ``not_issued``."""
    shared: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Methods whose code is on the lock through another method's slot of the same user:
    ``(holder method id, sentence)``."""
    notes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """For desired methods: ``(code, sentence)`` worth showing beside their sync state (a
    refused duplicate of another user, Seam's errors or warnings on the method)."""
    next_change: datetime | None = None
    full: bool = False
    """Some holder was refused for ``capacity`` (which holders keep a slot then depends on
    all of them: such a plan is never patched)."""

    def _soon(self, t: datetime | None) -> None:
        if t is not None and (self.next_change is None or t < self.next_change):
            self.next_change = t


@dataclass(slots=True, eq=False)
class _Candidate:
    """A method that could go on the lock, on its own merits (checks passed). Made once per
    method and plan, never changed (not frozen: a frozen init costs 4x, 30,000 times)."""

    grant: Grant
    method: AccessMethod
    kind: CredentialKind
    secret: bytes = field(repr=False)
    due: bool
    """Wanted on the lock now (``False``: over already, or due later)."""

    @property
    def order(self) -> tuple[datetime, str, str]:
        """Which grant keeps a code: the one that starts first, then the smaller grant id."""
        return (self.grant.starts_at or _EPOCH, self.grant.grant_id, self.method.method_id)

    @property
    def owner(self) -> str:
        uid = self.grant.user_identity_id
        return f"user identity {uid}" if uid else f"access grant {self.grant.grant_id}"

    @property
    def start(self) -> datetime:
        return self.grant.starts_at or _EPOCH

    @property
    def end(self) -> datetime:
        return self.grant.ends_at or _NEVER


def plan(
    view: CloudView,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    *,
    lead_time: timedelta,
    tag: TagFn,
) -> Plan:
    """The lock's wanted state at ``t`` (see :func:`_plan_steps`)."""
    result = Plan()
    for _ in _plan_steps(result, view, scope, caps, t, lead_time, tag, False):
        pass
    return result


async def plan_sliced(
    view: CloudView,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    *,
    lead_time: timedelta,
    tag: TagFn,
    slicer: Slicer | None = None,
    shared: bool = False,
) -> Plan:
    """:func:`plan`, giving the event loop back between slices (tens of thousands of grants).
    ``shared``: take credentials from the view's cache and add to it (``tag`` is then the
    one tag function used with this view)."""
    slicer = slicer or Slicer()
    result = Plan()
    for _ in _plan_steps(result, view, scope, caps, t, lead_time, tag, shared):
        await slicer.tick()
    return result


async def plan_shared(
    view: CloudView,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    *,
    lead_time: timedelta,
    tag: TagFn,
) -> Plan:
    """:func:`plan_sliced`, computed once per data version for all locks with the same scope
    and capabilities. A plan made at ``t0`` holds until its ``next_change``: the answer
    changes with time only at the window boundaries it records. Callers must not change it.

    A new version's first plan for a scope is the last version's plan patched where grants
    changed (:func:`_patched`), when that plan still holds at ``t``."""
    key: tuple[object, ...] = (
        scope.space_ids,
        scope.entrance_ids,
        scope.device_ids,
        caps,
        lead_time,
    )
    async with view._planning:
        hit = view.plans.get(key)
        if hit is not None:
            made_at, p = hit
            if made_at <= t and (p.next_change is None or t < p.next_change):
                return p
        before = view.before.plans.get(key) if view.before is not None else None
        patched = None
        if before is not None and before[0] <= t and _holds(before[1], t):
            patched = await _patched(view, before[1], scope, caps, t, lead_time, tag)
        p = patched or await plan_sliced(
            view, scope, caps, t, lead_time=lead_time, tag=tag, shared=True
        )
        view.plans[key] = (t, p)
        if len(p.desired) >= LONG_LIVED_PLAN:
            settle()  # it lives as long as this version: later collections need not walk it
        return p


def _without(part: dict[str, _V], drop: set[str]) -> dict[str, _V]:
    """A copy of ``part`` without the keys in ``drop`` (a few dozen of thousands: the copy is
    one C call, the pops one each, in the same order as a filtered copy)."""
    out = dict(part)
    for k in drop:
        out.pop(k, None)
    return out


def _holds(p: Plan, t: datetime) -> bool:
    return p.next_change is None or t < p.next_change


async def _patched(
    view: CloudView,
    before: Plan,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    lead_time: timedelta,
    tag: TagFn,
) -> Plan | None:
    """``before`` (this scope's plan of the last version, holding at ``t``) with the secrets
    of the grants that changed planned again at ``t``; ``None`` if it cannot be patched.

    A plan is made of independent parts, one per secret (its slot: holder, shared, refused
    duplicates, scheduled runs) and one per method without a secret (waiting, refused),
    as long as the lock has room for every holder (else which holders keep a slot depends on
    all of them: then ``None``). A grant that did not change, with the same methods, gives
    the same answers at ``t`` as when ``before`` was made, since ``before`` holds at ``t``.
    So every method of a changed grant that was or is in the scope, and every method in the
    scope that shares a secret with one of those (before or now), is taken out and planned
    again; the rest is kept. ``next_change`` stays ``before``'s unless a new part comes
    sooner (a moment that no longer matters only costs a plan made again then). The kept
    credentials are not added to the view's cache (see :func:`_kept`)."""
    assert view.before is not None
    if not caps.stores_credentials or before.full:
        return None
    slicer = Slicer()
    ours = view.grants_for(scope)
    spaces = view.lock_spaces(scope)
    old_grants, old_methods = view.before.grants, view.before.methods
    grants, by_grant = view.grants, view.by_grant
    drop: set[str] = set()
    secrets: set[tuple[str, bytes]] = set()
    again: dict[str, tuple[Grant, AccessMethod]] = {}
    for gid in view.before.changed:
        was = old_grants.get(gid)
        if was is not None and was.revoked_at is None and view.serves(scope, was, spaces):
            for m in old_methods.get(gid, ()):
                drop.add(m.method_id)
                if m.secret is not None:
                    secrets.add((m.mode, m.secret))
        if gid in ours:
            g = grants[gid]
            for m in by_grant.get(gid, ()):
                again[m.method_id] = (g, m)
                if m.secret is not None:
                    secrets.add((m.mode, m.secret))
    for key in secrets:
        for m in view.methods_with(*key):
            if m.grant_id in ours:
                again[m.method_id] = (grants[m.grant_id], m)
    drop.update(again)
    await slicer.tick()
    result = Plan(
        _without(before.desired, drop),
        _without(before.scheduled, drop),
        _without(before.rejected, drop),
        _without(before.waiting, drop),
        _without(before.shared, drop),
        _without(before.notes, drop),
        before.next_change,
    )
    await slicer.tick()
    groups: dict[tuple[CredentialKind, bytes], list[_Candidate]] = {}
    for n, (grant, method) in enumerate(again.values(), 1):
        c = _consider(result, grant, method, caps, t, lead_time)
        if c is not None:
            groups.setdefault((c.kind, c.secret), []).append(c)
        if not n % STEP:
            await slicer.tick()
    for _ in _slot_steps(result, groups, view, caps, tag, True):
        await slicer.tick()
    if result.full:
        return None
    return result


def _plan_steps(
    result: Plan,
    view: CloudView,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    lead_time: timedelta,
    tag: TagFn,
    shared: bool,
) -> Iterator[None]:
    """Fill ``result`` with the lock's wanted state at ``t``, yielding after each grant
    and every :data:`STEP` groups and credentials (``shared``: credentials through the
    view's cache).

    One code, one slot (see docs/cloud.md, "The same code twice on one lock"): methods with
    the same secret are grouped. Within the owner of the group's earliest live grant, the
    grants whose windows overlap or touch form one slot, held by the earliest of them, with
    the merged window; the owner's other methods are ``shared``. Other owners' live methods
    with that secret are refused as ``duplicate_code_on_device`` (cards and mobile keys:
    ``duplicate_credential_on_device``), and the holder notes who was refused.
    """
    if not caps.stores_credentials:
        return  # a reader: the validator decides each read, nothing goes onto it
    groups: dict[tuple[CredentialKind, bytes], list[_Candidate]] = {}
    grants, by_grant = view.grants, view.by_grant
    for gid in view.grants_for(scope):
        grant = grants[gid]
        for method in by_grant.get(gid, ()):
            c = _consider(result, grant, method, caps, t, lead_time)
            if c is not None:
                same = groups.get((c.kind, c.secret))
                if same is None:
                    groups[(c.kind, c.secret)] = [c]
                else:
                    same.append(c)
        yield None
    yield from _slot_steps(result, groups, view, caps, tag, shared)


def _slot_steps(
    result: Plan,
    groups: dict[tuple[CredentialKind, bytes], list[_Candidate]],
    view: CloudView,
    caps: Capabilities,
    tag: TagFn,
    shared: bool,
) -> Iterator[None]:
    """Each secret's slot (:func:`_one_slot`) and the credentials of their holders, in the
    order of the holders (which keep their slots when the lock is full)."""
    holders: list[tuple[_Candidate, datetime | None, datetime | None]] = []
    for n, group in enumerate(groups.values(), 1):
        slot = _one_slot(result, group)
        if slot is not None:
            holders.append(slot)
        if not n % STEP:
            yield None
    holders.sort(key=_holder_order)
    windows = caps.enforces_time_windows
    made = view.credentials if shared else {}
    framed: dict[tuple[datetime | None, datetime | None], tuple[TimeWindow, bytes, bytes]] = {}
    """Each window once per plan, with its text (a grant's methods share one)."""
    desired = result.desired
    for n, (holder, starts, ends) in enumerate(holders, 1):
        mid = holder.method.method_id
        if len(desired) >= caps.slots:
            result.rejected[mid] = ("capacity", f"the lock has {caps.slots} slots, all taken")
            result.full = True
            result.notes.pop(mid, None)
            continue
        result._soon(ends)
        window: TimeWindow | None = None
        since = until = b""
        if windows:
            known = framed.get((starts, ends))
            if known is None:
                w = _safe_window(starts, ends)
                known = framed[(starts, ends)] = (w, _when(w.starts_at), _when(w.ends_at))
            window, since, until = known
        key = (mid, window.starts_at, window.ends_at, True) if window else (mid, None, None, False)
        cred = made.get(key)
        if cred is None and shared:
            cred = view.inherited.get(key)
            if cred is None and view.last_plans:
                cred = _kept(view.last_plans, mid, window)
        if cred is None or cred.secret != holder.secret or cred.kind is not holder.kind:
            cred = Credential(
                credential_id=mid,
                kind=holder.kind,
                secret=holder.secret,
                tag=tag(mid.encode(), holder.kind.value.encode(), holder.secret, since, until),
                window=window,
            )
        if shared:
            made[key] = cred
        desired[mid] = cred
        if not n % STEP:
            yield None


def _kept(
    plans: dict[tuple[object, ...], tuple[datetime, Plan]], mid: str, window: TimeWindow | None
) -> Credential | None:
    """The credential of ``mid`` with ``window`` in one of the last version's ``plans``: a
    patched plan keeps its unchanged credentials without adding them to its view's
    :attr:`CloudView.credentials`, so a plan made from scratch in the next version finds them
    here (checked against the method like any other)."""
    for _, p in plans.values():
        cred = p.desired.get(mid)
        if cred is not None and cred.window == window:
            return cred
    return None


def _holder_order(h: tuple[_Candidate, datetime | None, datetime | None]) -> tuple[object, ...]:
    return h[0].order


def _one_slot(
    result: Plan, group: list[_Candidate]
) -> tuple[_Candidate, datetime | None, datetime | None] | None:
    """The holder of one secret's slot and its window, or ``None`` when nobody is live."""
    if len(group) == 1:  # the usual case: nobody else has this secret on this lock
        (only,) = group
        if not only.due:
            return None
        _note(result, only, [], "")
        return only, only.grant.starts_at, only.grant.ends_at
    live = sorted((c for c in group if c.due), key=lambda c: c.order)
    if not live:
        return None
    first = live[0]
    runs: list[list[_Candidate]] = []  # the owner's grants, in runs that overlap or touch
    run_end = _EPOCH
    for c in sorted((c for c in group if c.owner == first.owner), key=lambda c: c.start):
        if runs and c.start <= run_end:
            runs[-1].append(c)
            run_end = max(run_end, c.end)
        else:
            runs.append([c])
            run_end = c.end
    chain = next(run for run in runs if any(c is first for c in run))
    chain_end = max(c.end for c in chain)
    holder = min(chain, key=lambda c: c.order)
    hid, hgrant = holder.method.method_id, holder.grant.grant_id
    for c in chain:
        mid = c.method.method_id
        was_scheduled = result.scheduled.pop(mid, None) is not None
        if c is not holder and (c.due or was_scheduled):
            result.shared[mid] = (
                hid,
                f"on the lock through access method {hid} (access grant {hgrant}) of the same "
                f"{holder.owner}: one slot for the same code while any of these grants is live",
            )
    for run in runs:
        for c in run if run is not chain else ():
            if c.due:  # due early (lead time) while the run before it still holds the slot
                result.scheduled[c.method.method_id] = chain_end
                result._soon(chain_end)
    refused = [c for c in live if c.owner != first.owner]
    duplicate = (
        "duplicate_code_on_device"
        if holder.kind is CredentialKind.CODE
        else "duplicate_credential_on_device"
    )
    for c in refused:
        result.rejected[c.method.method_id] = (
            duplicate,
            f"{holder.owner} holds the same {holder.kind.value} on this lock through access "
            f"grant {hgrant} (access method {hid}), which keeps it: the grant that starts "
            "first keeps the code",
        )
    _note(result, holder, refused, duplicate)
    starts = None if any(c.grant.starts_at is None for c in chain) else min(c.start for c in chain)
    ends = None if any(c.grant.ends_at is None for c in chain) else chain_end
    return holder, starts, ends


def _note(result: Plan, holder: _Candidate, refused: list[_Candidate], duplicate: str) -> None:
    """What to show beside the holder's sync state: who was refused its code, and Seam's own
    errors, warnings and pending mutations on its grant and method."""
    method = holder.method
    if not (refused or holder.grant.seam_notes or method.seam_notes) and method.issued:
        return  # the usual case: nothing to say
    codes: list[str] = []
    texts: list[str] = []
    if refused:
        others = sorted({f"access grant {c.grant.grant_id} of {c.owner}" for c in refused})
        codes.append(duplicate)
        texts.append(
            f"{', '.join(others)} asked for the same {holder.kind.value} here and was refused"
        )
    if not holder.method.issued:
        codes.append("not_issued")
        texts.append("Seam has not issued this access method yet; pushed with what it has")
    for n in holder.grant.seam_notes + holder.method.seam_notes:
        codes.append(n.code)
        texts.append(n.text())
    if codes:
        result.notes[holder.method.method_id] = (codes[0], "; ".join(texts))


_EPOCH = datetime.min.replace(tzinfo=UTC)
_NEVER = datetime.max.replace(tzinfo=UTC)


def _consider(
    result: Plan,
    grant: Grant,
    method: AccessMethod,
    caps: Capabilities,
    t: datetime,
    lead_time: timedelta,
) -> _Candidate | None:
    mid = method.method_id
    kind = method.kind
    if kind is None:
        return None  # cloud keys and other modes never reach a lock
    if grant.problem is not None:
        result.rejected[mid] = ("invalid_grant", grant.problem)
        return None
    if method.secret is None and not method.issued:
        result.waiting[mid] = ("not_issued", "Seam has not issued this access method yet")
        return None
    if method.problem is not None or method.secret is None:
        result.rejected[mid] = ("invalid_method", method.problem or "no secret")
        return None
    if kind not in caps.kinds:
        result.rejected[mid] = ("unsupported", f"the lock does not take {kind.value} credentials")
        return None
    if kind is CredentialKind.CODE:
        problem = caps.code_problem(method.secret.decode("utf-8", "replace"))
        if problem is not None:
            result.rejected[mid] = ("code_rule", problem)
            return None
    if grant.ends_at is not None and t >= grant.ends_at:
        return _Candidate(grant, method, kind, method.secret, due=False)  # over: not wanted
    due = grant.starts_at
    if due is not None and caps.enforces_time_windows:
        due = due - lead_time
    if due is not None and t < due:
        result.scheduled[mid] = due
        result._soon(due)
        return _Candidate(grant, method, kind, method.secret, due=False)
    result._soon(grant.ends_at)
    return _Candidate(grant, method, kind, method.secret, due=True)


def _safe_window(starts: datetime | None, ends: datetime | None) -> TimeWindow:
    """The window a whole-second lock clock can hold without widening it: the start rounded
    up to the next whole second, the end rounded down."""
    if starts is not None and starts.microsecond:
        starts = starts.replace(microsecond=0) + timedelta(seconds=1)
    if ends is not None and ends.microsecond:
        ends = ends.replace(microsecond=0)
    return TimeWindow(starts, ends)


def _when(t: datetime | None) -> bytes:
    return b"" if t is None else t.isoformat().encode()
