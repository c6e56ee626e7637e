"""What the session layer needs from a carrier, and the send-wait-retransmit loop over one.

A carrier moves whole datagrams to one lock and back: a serial bus address (with the framing
of :mod:`~drivers.lockproto.framing`), or a BLE GATT connection. It may lose, delay or corrupt
datagrams; the session copes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from drivers.errors import LockTimeoutError

T = TypeVar("T")


class Carrier(Protocol):
    @property
    def max_datagram(self) -> int:
        """The longest datagram the carrier moves in one piece."""
        ...

    @property
    def generation(self) -> int:
        """Changes whenever the underlying link was re-established (sessions do not survive)."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Held for one whole exchange: one operation at a time on a shared medium."""
        ...

    async def send(self, datagram: bytes) -> None:
        """Queue one datagram; raises :class:`drivers.errors.LockOfflineError` when down."""
        ...

    async def receive(self, within: float) -> bytes:
        """The next datagram from the lock; ``TimeoutError`` when none came ``within`` s."""
        ...

    def discard_pending(self) -> None:
        """Drop datagrams that arrived while nobody waited (late or unsolicited)."""
        ...

    def wire_time(self, datagram_len: int) -> float:
        """Seconds the carrier needs to move a datagram of this length."""
        ...


async def exchange(
    carrier: Carrier,
    make: Callable[[], bytes],
    accept: Callable[[bytes], T | None],
    *,
    per_attempt: float,
    attempts: int,
    lock_id: str,
    on_retransmit: Callable[[], None] = lambda: None,
    hint: Callable[[], Exception | None] | None = None,
) -> T:
    """Send ``make()``, wait up to ``per_attempt`` s for a datagram ``accept`` takes; repeat.

    ``make`` is called again for each attempt (a sealed datagram needs a new counter);
    ``accept`` returns ``None`` to ignore a datagram (counted by the caller) or raises to end
    the exchange. An unauthenticated refusal (a plain ERROR anyone on the wire can forge) is
    never a reason to stop waiting: ``accept`` notes it and returns ``None``, the wait goes on
    until the attempt's deadline, and only then ``hint()`` may return an exception that ends
    the exchange instead of a retransmission.
    """
    loop = asyncio.get_running_loop()
    for attempt in range(attempts):
        if attempt:
            on_retransmit()
        await carrier.send(make())
        deadline = loop.time() + per_attempt
        while (remaining := deadline - loop.time()) > 0:
            try:
                data = await carrier.receive(remaining)
            except TimeoutError:
                break
            result = accept(data)
            if result is not None:
                return result
        if hint is not None and (refusal := hint()) is not None:
            raise refusal
    raise LockTimeoutError(
        f"no valid answer after {attempts} attempts of {per_attempt:.3f} s", lock_id=lock_id
    )
