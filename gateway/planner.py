"""What each lock should hold at time *t*: a pure function of the cloud data and the clock.

:class:`CloudView` indexes one version of the store's cloud data (grants by space, entrance and
device; methods by grant) so that planning 50 locks does not scan 30,000 methods 50 times.
:func:`plan` returns, for one lock, the credentials due now (with their windows attached when
the lock enforces windows itself), those due later, those that cannot go on (with a reason
code: ``invalid_grant``, ``invalid_method``, ``unsupported``, ``code_rule``, ``duplicate``,
``capacity``), and the next moment the answer changes by time alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from drivers.base import Capabilities, Credential, CredentialKind, TimeWindow
from gateway.models import AccessMethod, Entrance, Grant

TagFn = Callable[..., bytes]


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
        self.version = version
        self.grants = grants
        self.by_grant: dict[str, list[AccessMethod]] = defaultdict(list)
        self.grant_of: dict[str, str] = {}
        """Access method id -> its grant id (the lock's audit log names methods only)."""
        for m in methods:
            if m.grant_id is not None and m.revoked_at is None:
                self.by_grant[m.grant_id].append(m)
                self.grant_of[m.method_id] = m.grant_id
        self.user_of: dict[str, str | None] = {
            gid: g.user_identity_id for gid, g in grants.items()
        }
        """Grant id -> its user identity (for access events from a lock's log)."""
        self.entrance_spaces = {e.entrance_id: e.space_ids for e in entrances}
        self.grants_by_space: dict[str, set[str]] = defaultdict(set)
        self.grants_by_entrance: dict[str, set[str]] = defaultdict(set)
        self.grants_by_device: dict[str, set[str]] = defaultdict(set)
        for g in grants.values():
            if g.revoked_at is not None:
                continue
            for s in g.space_ids:
                self.grants_by_space[s].add(g.grant_id)
            for e in g.entrance_ids:
                self.grants_by_entrance[e].add(g.grant_id)
            for d in g.device_ids:
                self.grants_by_device[d].add(g.grant_id)

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

    def serves(self, scope: LockScope, grant: Grant) -> bool:
        return bool(
            grant.space_ids & self.lock_spaces(scope)
            or grant.entrance_ids & scope.entrance_ids
            or grant.device_ids & scope.device_ids
        )


@dataclass(slots=True)
class Plan:
    desired: dict[str, Credential] = field(default_factory=dict)
    scheduled: dict[str, datetime] = field(default_factory=dict)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    next_change: datetime | None = None

    def _soon(self, t: datetime | None) -> None:
        if t is not None and (self.next_change is None or t < self.next_change):
            self.next_change = t


def plan(
    view: CloudView,
    scope: LockScope,
    caps: Capabilities,
    t: datetime,
    *,
    lead_time: timedelta,
    tag: TagFn,
) -> Plan:
    result = Plan()
    if not caps.stores_credentials:
        return result  # a reader: the validator decides each read, nothing goes onto it
    candidates: list[tuple[datetime, str, Credential]] = []
    for gid in view.grants_for(scope):
        grant = view.grants[gid]
        for method in view.by_grant.get(gid, ()):
            _consider(result, candidates, grant, method, caps, t, lead_time, tag)
    candidates.sort(key=lambda c: (c[0], c[1]))
    holders: dict[tuple[CredentialKind, bytes], str] = {}
    for _, mid, cred in candidates:
        other = holders.get((cred.kind, cred.secret))
        if other is not None:
            result.rejected[mid] = ("duplicate", f"same {cred.kind.value} as {other} on this lock")
            continue
        if len(result.desired) >= caps.slots:
            result.rejected[mid] = ("capacity", f"the lock has {caps.slots} slots, all taken")
            continue
        holders[(cred.kind, cred.secret)] = mid
        result.desired[mid] = cred
    return result


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _consider(
    result: Plan,
    candidates: list[tuple[datetime, str, Credential]],
    grant: Grant,
    method: AccessMethod,
    caps: Capabilities,
    t: datetime,
    lead_time: timedelta,
    tag: TagFn,
) -> None:
    mid = method.method_id
    kind = method.kind
    if kind is None:
        return  # cloud keys and other modes never reach a lock
    if grant.problem is not None:
        result.rejected[mid] = ("invalid_grant", grant.problem)
        return
    if method.problem is not None or method.secret is None:
        result.rejected[mid] = ("invalid_method", method.problem or "no secret")
        return
    if kind not in caps.kinds:
        result.rejected[mid] = ("unsupported", f"the lock does not take {kind.value} credentials")
        return
    if kind is CredentialKind.CODE:
        problem = caps.code_problem(method.secret.decode("utf-8", "replace"))
        if problem is not None:
            result.rejected[mid] = ("code_rule", problem)
            return
    if grant.ends_at is not None and t >= grant.ends_at:
        return  # over: not wanted anywhere
    due = grant.starts_at
    if due is not None and caps.enforces_time_windows:
        due = due - lead_time
    if due is not None and t < due:
        result.scheduled[mid] = due
        result._soon(due)
        return
    result._soon(grant.ends_at)
    window = TimeWindow(grant.starts_at, grant.ends_at) if caps.enforces_time_windows else None
    cred = Credential(
        credential_id=mid,
        kind=kind,
        secret=method.secret,
        tag=tag(
            mid.encode(),
            kind.value.encode(),
            method.secret,
            _when(window.starts_at if window else None),
            _when(window.ends_at if window else None),
        ),
        window=window,
    )
    candidates.append((grant.starts_at or _EPOCH, mid, cred))


def _when(t: datetime | None) -> bytes:
    return b"" if t is None else t.isoformat().encode()
