"""Keypad brute-force protection: after N failures at one lock within a window, the lock's
keypad is refused for a while, doubling with each further lockout up to a maximum."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.config import ValidatorConfig
from gateway.store.lockouts import Lockouts, LockoutState


class LockoutPolicy:
    def __init__(self, repo: Lockouts, config: ValidatorConfig) -> None:
        self._repo = repo
        self._config = config

    def locked_until(self, lock_id: str, t: datetime) -> datetime | None:
        state = self._repo.get(lock_id)
        if state.locked_until is not None and t < state.locked_until:
            return state.locked_until
        return None

    def failure(self, lock_id: str, t: datetime) -> datetime | None:
        """Count a failed attempt; returns the end of a lockout it started, if it did."""
        cfg = self._config
        state = self._repo.get(lock_id)
        horizon = t - timedelta(seconds=cfg.lockout_window_s)
        state.failures = [f for f in state.failures if f > horizon] + [t]
        started = None
        if len(state.failures) >= cfg.lockout_failures:
            seconds = min(cfg.lockout_base_s * 2**state.level, cfg.lockout_max_s)
            state.locked_until = started = t + timedelta(seconds=seconds)
            state.level += 1
            state.failures = []
        self._repo.put(lock_id, state)
        return started

    def success(self, lock_id: str) -> None:
        state = self._repo.get(lock_id)
        if state.failures or state.level:
            self._repo.put(lock_id, LockoutState())
