"""What the management plane may see of the gateway: a narrow interface, not the whole object.

:class:`~gateway.mqtt.plane.MqttPlane` (commands, retained state, Home Assistant) is written
against :class:`ManagedGateway`; :class:`~gateway.daemon.Gateway` satisfies it. Everything
that reaches a lock goes through a lock's handle (``locks[id].handle``) or through
:meth:`ManagedGateway.commission` / :meth:`ManagedGateway.remove_lock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from drivers.base import CredentialKind
    from gateway.clock import Clock, TimeSource
    from gateway.config import GatewayConfig
    from gateway.reconciler import LockReconciler
    from gateway.store.store import Store
    from gateway.sync_loop import SyncLoop
    from gateway.timetrust import TimeTrust
    from gateway.validator import Decision, Validator


class ManagedGateway(Protocol):
    @property
    def config(self) -> GatewayConfig: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def wall_clock(self) -> TimeSource: ...

    @property
    def store(self) -> Store: ...

    @property
    def trust(self) -> TimeTrust: ...

    @property
    def validator(self) -> Validator: ...

    @property
    def sync_loop(self) -> SyncLoop: ...

    @property
    def locks(self) -> Mapping[str, LockReconciler]: ...

    def decide(
        self,
        kind: CredentialKind,
        secret: bytes,
        lock_id: str,
        *,
        dry_run: bool,
        tested_by: str | None = None,
    ) -> Decision: ...

    async def commission(
        self, lock_id: str, pairing_secret: str, *, timeout_s: float | None = None
    ) -> None: ...

    async def remove_lock(self, lock_id: str) -> None: ...
