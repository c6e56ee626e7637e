"""The log of API requests the fake cloud received, so tests can count and inspect them.

A record is added when a request arrives (``status`` is ``None`` while it is being answered,
e.g. during a ``hang`` outage) and completed when the answer is sent. Tests await
:meth:`RequestLog.wait_for` (inside ``asyncio.timeout``) instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    method: str
    path: str
    params: dict[str, Any]
    """Query parameters or JSON body (query values as strings, repeated keys as lists)."""
    at: datetime
    status: int | None = None
    outage: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "params": self.params,
            "at": self.at.isoformat(),
            "status": self.status,
            "outage": self.outage,
        }


Predicate = Callable[[RequestRecord], bool]


@dataclass(slots=True)
class _Waiter:
    predicate: Predicate
    count: int
    future: asyncio.Future[None] = field(repr=False)


class RequestLog:
    """Records of API requests, oldest first."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self._waiters: list[_Waiter] = []

    def add(self, record: RequestRecord) -> RequestRecord:
        self.records.append(record)
        self.notify()
        return record

    def clear(self) -> None:
        self.records.clear()

    def matching(
        self, path: str | None = None, method: str | None = None, *, done: bool = False
    ) -> list[RequestRecord]:
        """Records for ``path`` / ``method`` (``done``: only those already answered)."""
        return [r for r in self.records if _match(r, path, method, done)]

    def count(self, path: str | None = None, method: str | None = None) -> int:
        return len(self.matching(path, method))

    def notify(self) -> None:
        """Wake the waiters whose condition now holds (call after a record changes)."""
        for waiter in list(self._waiters):
            hits = sum(1 for r in self.records if waiter.predicate(r))
            if hits >= waiter.count and not waiter.future.done():
                waiter.future.set_result(None)
                self._waiters.remove(waiter)

    async def wait_for(
        self,
        count: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        done: bool = False,
    ) -> list[RequestRecord]:
        """Wait until ``count`` matching requests were received (answered, with ``done``).

        Bound the wait with ``asyncio.timeout`` in the caller.
        """

        def predicate(record: RequestRecord) -> bool:
            return _match(record, path, method, done)

        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(predicate, count, future)
        self._waiters.append(waiter)
        self.notify()
        try:
            await future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return self.matching(path, method, done=done)


def _match(record: RequestRecord, path: str | None, method: str | None, done: bool) -> bool:
    return (
        (path is None or record.path == path)
        and (method is None or record.method == method.upper())
        and (not done or record.status is not None)
    )
