"""Read a lock's audit log into a store's outbox, as the reconciler does after each pass."""

from __future__ import annotations

import logging

from gateway.audit_log import collect_audit_log
from gateway.handle import LockHandle
from gateway.store.store import Store

LOG = logging.getLogger("tests.audit_reads")


async def collect(handle: LockHandle, store: Store) -> int:
    """One collection: how many entries it recorded."""
    async with handle.session() as ops:
        return await collect_audit_log(ops, store.outbox, {}, LOG)
