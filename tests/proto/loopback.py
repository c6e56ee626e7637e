"""A :class:`Carrier` wired straight to a :class:`LockEngine`, with a tap and a tamper hook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict, Unpack

from lockgate_sim.lock import SimLock, SimLockSpec
from lockgate_sim.proto_lock import LockEngine

from drivers.lockproto.crypto import Rng

Tamper = Callable[[str, bytes], bytes | None]
"""(direction "to_lock" | "to_gateway", datagram) -> datagram to deliver, or None to drop."""

FIXED_NOW = datetime(2026, 1, 1, tzinfo=UTC)


class EngineOptions(TypedDict, total=False):
    """:class:`LockEngine`'s keyword arguments a test may set (``rng`` is its own argument)."""

    max_message: int
    reply_ms: int
    access_timeout: float
    boot_time: float
    pairing_cooldown: float
    monotonic: Callable[[], float]


class FixedRng:
    """Hands out predetermined byte strings, in order; fails on a length mismatch."""

    def __init__(self, *values: bytes) -> None:
        self._values = list(values)

    def then(self, *values: bytes) -> FixedRng:
        self._values.extend(values)
        return self

    def __call__(self, n: int) -> bytes:
        value = self._values.pop(0)
        assert len(value) == n, f"asked for {n} bytes, next fixed value has {len(value)}"
        return value


class LoopbackCarrier:
    def __init__(self, engine: LockEngine, *, tamper: Tamper | None = None) -> None:
        self.engine = engine
        self.tamper = tamper
        self.log: list[tuple[str, bytes]] = []
        self.generation = 1
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    @property
    def max_datagram(self) -> int:
        return 2048

    def exclusive(self) -> asyncio.Lock:
        return self._lock

    async def send(self, datagram: bytes) -> None:
        if self.tamper is not None:
            tampered = self.tamper("to_lock", datagram)
            if tampered is None:
                return
            datagram = tampered
        self.log.append(("to_lock", datagram))
        reply = await self.engine.handle(datagram)
        if reply is None:
            return
        if self.tamper is not None:
            tampered = self.tamper("to_gateway", reply)
            if tampered is None:
                return
            reply = tampered
        self.log.append(("to_gateway", reply))
        self._queue.put_nowait(reply)

    async def receive(self, within: float) -> bytes:
        async with asyncio.timeout(within):
            return await self._queue.get()

    def discard_pending(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def wire_time(self, datagram_len: int) -> float:
        return 0.0


def make_engine(
    rng: Rng | None = None, spec: SimLockSpec | None = None, **options: Unpack[EngineOptions]
) -> LockEngine:
    lock = SimLock("lock-1", spec, now=lambda: FIXED_NOW)
    options.setdefault("reply_ms", 20)
    if rng is None:
        return LockEngine(lock, **options)
    return LockEngine(lock, rng=rng, **options)
