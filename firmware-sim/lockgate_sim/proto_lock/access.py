"""Access requests waiting for the gateway: the lock asks, the gateway's poll collects.

:meth:`AccessQueue.ask` is the :attr:`SimLock.online_decider`: it queues the request and waits
for the gateway's ACCESS_ANSWER up to ``timeout`` (then the lock denies with
``gateway_unreachable``). The POLL handler shows the oldest waiting request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from drivers.base import CredentialKind
from drivers.lockproto.convert import KIND_TO_WIRE, to_unix
from drivers.lockproto.records import AccessAnswerRecord, AccessRequestRecord

Answer = tuple[bool, str, str | None]


class AccessQueue:
    def __init__(
        self, now: Callable[[], datetime], *, timeout: float = 5.0, capacity: int = 4
    ) -> None:
        self.timeout = timeout
        self.capacity = capacity
        self.asked = 0
        self.answered = 0
        self._now = now
        self._handle = 0
        self._pending: dict[int, tuple[AccessRequestRecord, asyncio.Future[Answer]]] = {}

    async def ask(self, kind: CredentialKind, secret: bytes, proof: bytes | None) -> Answer:
        if len(self._pending) >= self.capacity:
            raise ConnectionError("too many access requests waiting")
        self._handle = self._handle % 0xFFFF + 1
        handle = self._handle
        record = AccessRequestRecord(
            handle, KIND_TO_WIRE[kind], to_unix(self._now()), secret, proof or b""
        )
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[handle] = (record, future)
        self.asked += 1
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        finally:
            self._pending.pop(handle, None)

    def oldest(self) -> AccessRequestRecord | None:
        for record, future in self._pending.values():
            if not future.done():
                return record
        return None

    @property
    def waiting(self) -> int:
        return sum(1 for _, future in self._pending.values() if not future.done())

    def answer(self, rec: AccessAnswerRecord) -> bool:
        entry = self._pending.get(rec.handle)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result((rec.allow, rec.reason, rec.credential_id or None))
        self.answered += 1
        return True

    def drop_all(self) -> None:
        """A reboot: every waiting request is lost."""
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("lock rebooted"))
        self._pending.clear()
