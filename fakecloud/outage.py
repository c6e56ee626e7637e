"""Simulated cloud outages: what the next API requests suffer, and releasing hung requests.

Modes: ``refuse`` (503), ``http_429`` (429 with ``Retry-After``), ``malformed_json`` (200 with a
broken body), ``hang`` (no answer until the outage is cleared), ``slow`` (answer after
``delay_s``, or sooner when cleared), ``unauthorized`` (401). An outage set with
:meth:`OutageController.set` lasts until cleared; :meth:`OutageController.fail_next` hits only
the next ``count`` API requests (optionally only those to one path), then the standing outage
(if any) applies again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum


class OutageMode(StrEnum):
    REFUSE = "refuse"
    HTTP_429 = "http_429"
    MALFORMED_JSON = "malformed_json"
    HANG = "hang"
    SLOW = "slow"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class Outage:
    mode: OutageMode
    retry_after_s: int = 30
    """``Retry-After`` header of ``http_429``, in seconds."""
    delay_s: float = 5.0
    """Delay of ``slow`` before the normal answer."""


@dataclass(slots=True)
class _OneShot:
    outage: Outage
    remaining: int
    path: str | None


class OutageController:
    """The standing outage, the one-shot failures, and the release of waiting requests."""

    def __init__(self) -> None:
        self.current: Outage | None = None
        self._one_shots: list[_OneShot] = []
        self._release = asyncio.Event()
        self.closing = False

    def set(self, outage: Outage | OutageMode | str, **options: float) -> Outage:
        """Start a standing outage (``set("http_429", retry_after_s=5)`` works too)."""
        self.current = _as_outage(outage, options)
        return self.current

    def clear(self) -> None:
        """End the standing outage and the pending one-shots; release hung/slow requests."""
        self.current = None
        self._one_shots.clear()
        self._wake_waiters()

    def fail_next(
        self,
        count: int,
        outage: Outage | OutageMode | str,
        *,
        path: str | None = None,
        **options: float,
    ) -> Outage:
        """Make the next ``count`` API requests (to ``path`` only, if given) fail."""
        if count < 1:
            raise ValueError("count must be at least 1")
        chosen = _as_outage(outage, options)
        self._one_shots.append(_OneShot(chosen, count, path))
        return chosen

    @property
    def pending_one_shots(self) -> int:
        return sum(shot.remaining for shot in self._one_shots)

    def take(self, path: str) -> Outage | None:
        """The outage the request to ``path`` suffers (consuming a one-shot), if any."""
        for shot in self._one_shots:
            if shot.path is None or shot.path == path:
                shot.remaining -= 1
                if shot.remaining == 0:
                    self._one_shots.remove(shot)
                return shot.outage
        return self.current

    async def wait_released(self) -> None:
        """Wait until the outage is cleared or the server closes."""
        if not self.closing:
            await self._release.wait()

    def shutdown(self) -> None:
        """Release every waiting request for good (the server is stopping)."""
        self.closing = True
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        self._release.set()
        self._release = asyncio.Event()


def _as_outage(outage: Outage | OutageMode | str, options: dict[str, float]) -> Outage:
    if isinstance(outage, Outage):
        return outage
    mode = OutageMode(outage)
    return Outage(
        mode,
        retry_after_s=int(options.get("retry_after_s", 30)),
        delay_s=float(options.get("delay_s", 5.0)),
    )
