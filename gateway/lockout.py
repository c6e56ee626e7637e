"""Brute-force protection for the gateway's decisions (docs/offline-decisions.md).

Failed PINs and failed cards are counted apart, each in a bucket per lock and in one bucket
for the whole site. A bucket that reaches its threshold within its window locks that kind out
(at that lock, or at every lock for the site's bucket) for ``lockout_base_s``, doubling with
each further lockout up to ``lockout_max_s``.

What does *not* relieve a bucket, because an attacker has it to hand: any other credential's
success. A success takes back only the failures that named the same access method (someone
who came before their window opened); guesses that named nobody leave only with time. The
escalation level decays one doubling per ``lockout_decay_s`` without a new lockout, never on a
success. Mobile keys are not counted: a signature cannot be guessed, and a keypad lockout must
not shut out phones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers.base import CredentialKind
from gateway.config import ValidatorConfig
from gateway.store.lockouts import SITE, Failure, Lockouts, LockoutState

COUNTED_KINDS = frozenset({CredentialKind.CODE, CredentialKind.CARD})

KIND_VALUE = {k: k.value for k in CredentialKind}
"""A kind's value from a dict (``kind.value`` is a Python-level property; read once a
decision here and in :mod:`gateway.validator`)."""


@dataclass(frozen=True, slots=True)
class Lockout:
    """A lockout in force (or just started)."""

    until: datetime
    site_wide: bool
    kind: CredentialKind

    @property
    def what(self) -> str:
        device = "keypad" if self.kind is CredentialKind.CODE else "card reader"
        return f"{device} locked out{' at every lock' if self.site_wide else ''}"


@dataclass(frozen=True, slots=True)
class _Limit:
    failures: int
    window: timedelta


class LockoutPolicy:
    def __init__(self, repo: Lockouts, config: ValidatorConfig) -> None:
        self._repo = repo
        self._config = config
        window = timedelta(seconds=config.lockout_window_s)
        site_window = timedelta(seconds=config.site_lockout_window_s)
        self._lock_limits = {
            CredentialKind.CODE: _Limit(config.lockout_failures, window),
            CredentialKind.CARD: _Limit(config.card_lockout_failures, window),
        }
        self._site_limit = _Limit(config.site_lockout_failures, site_window)

    def _buckets(self, lock_id: str) -> tuple[tuple[str, bool], ...]:
        return ((lock_id, False), (SITE, True))

    def locked_until(
        self, lock_id: str, kind: CredentialKind, t: datetime
    ) -> Lockout | None:
        """The lockout in force for ``kind`` at this lock (its own or the site's)."""
        if kind not in COUNTED_KINDS:
            return None
        bound = self._repo.no_lockout_from
        if bound is None or t >= bound:
            return None  # no bucket is locked now: nothing to read
        here = self._repo.locked_until(lock_id, kind)
        site = self._repo.locked_until(SITE, kind)
        if site is not None and t < site and (here is None or site > here):
            return Lockout(site, True, kind)
        if here is not None and t < here:
            return Lockout(here, False, kind)
        return None

    def failure(
        self, lock_id: str, kind: CredentialKind, t: datetime, method_id: str | None = None
    ) -> list[Lockout]:
        """Count a failed attempt; returns the lockouts it started (none, usually)."""
        if kind not in COUNTED_KINDS:
            return []
        started: list[Lockout] = []
        value = KIND_VALUE[kind]
        for scope, site_wide in self._buckets(lock_id):
            limit = self._site_limit if site_wide else self._lock_limits[kind]
            was = self._repo.peek(scope, value)
            since = t - limit.window
            failures = [f for f in was.failures if f.at > since]
            failures.append(Failure(t, method_id))
            state = LockoutState(failures, was.locked_until, was.level, was.level_at)
            if len(failures) >= limit.failures:
                level = self._level(state, t)
                seconds = min(self._config.lockout_base_s * 2**level, self._config.lockout_max_s)
                state.locked_until = t + timedelta(seconds=seconds)
                state.level, state.level_at = level + 1, t
                state.failures = []
                started.append(Lockout(state.locked_until, site_wide, kind))
            self._repo.adopt(scope, value, state)
        return started

    def success(self, lock_id: str, kind: CredentialKind, method_id: str | None) -> None:
        """A credential opened: take back the failures that named this same method."""
        if method_id is None or not self._repo.names_any() or kind not in COUNTED_KINDS:
            return  # the usual success: no failure counted names a method (a third of its time)
        for scope, _site_wide in self._buckets(lock_id):
            if not self._repo.names(scope, kind, method_id):
                continue  # nothing to take back: no copy, nothing to write
            state = self._repo.get(scope, kind.value)
            state.failures = [f for f in state.failures if f.method_id != method_id]
            self._repo.put(scope, kind.value, state)

    def _level(self, state: LockoutState, t: datetime) -> int:
        """The escalation level now: one doubling forgiven per quiet ``lockout_decay_s``."""
        if state.level_at is None or state.level == 0:
            return state.level
        quiet = (t - state.level_at).total_seconds()
        return max(0, state.level - int(quiet // self._config.lockout_decay_s))
