"""How long the event loop was held: a task that asks to wake every millisecond and records
how late it woke. Used by the benches, never by tests (no timing assertions there).

With ``name_stalls=True`` a watchdog thread also names the slow slices: while the loop has not
woken for ``SAMPLE_AFTER_S``, it samples the loop thread's stack every few milliseconds, and
:meth:`StallMonitor.worst` gives the longest stalls with the project code they were spent in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Self

TICK_S = 0.001
SAMPLE_AFTER_S = 0.02
SAMPLE_EVERY_S = 0.003
OWN_CODE = ("/gateway/", "/drivers/", "/lockgate_sim/", "/fakecloud/")


@dataclass(slots=True)
class Stall:
    started: float
    seconds: float = 0.0
    where: Counter[str] = field(default_factory=Counter)

    def text(self) -> str:
        top = ", ".join(f"{n}x {w}" for w, n in self.where.most_common(3))
        return f"{self.seconds * 1000:6.1f} ms: {top or '(no sample)'}"


class StallMonitor:
    def __init__(self, *, name_stalls: bool = False) -> None:
        self.longest_s = 0.0
        self.stalls_over_50ms = 0
        self._task: asyncio.Task[None] | None = None
        self._name = name_stalls
        self._beat = time.perf_counter()
        self._stalls: list[Stall] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread = threading.get_ident()
        self._gc_started = 0.0
        self._in_gc = False
        self.gc_longest_s = [0.0, 0.0, 0.0]
        """The longest garbage collection seen, per generation (GC pauses hold the loop too)."""
        self.gc_runs = [0, 0, 0]

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            self._in_gc = True
            return
        self._in_gc = False
        gen = info["generation"]
        self.gc_runs[gen] += 1
        took = time.perf_counter() - self._gc_started
        self.gc_longest_s[gen] = max(self.gc_longest_s[gen], took)

    async def _watch(self) -> None:
        while True:
            t0 = time.perf_counter()
            self._beat = t0
            await asyncio.sleep(TICK_S)
            late = time.perf_counter() - t0 - TICK_S
            self.longest_s = max(self.longest_s, late)
            self.stalls_over_50ms += late > 0.05

    def _sample(self) -> None:
        current: Stall | None = None
        while not self._stop.wait(SAMPLE_EVERY_S):
            beat = self._beat
            held = time.perf_counter() - beat
            if held < SAMPLE_AFTER_S:
                current = None
                continue
            if current is None or current.started != beat:
                current = Stall(beat)
                self._stalls.append(current)
            current.seconds = held
            frame = sys._current_frames().get(self._loop_thread)
            if frame is not None:
                current.where["gc" if self._in_gc else _where(frame)] += 1

    def worst(self, n: int = 8) -> list[Stall]:
        return sorted(self._stalls, key=lambda s: -s.seconds)[:n]

    def reset(self) -> None:
        self.gc_longest_s = [0.0, 0.0, 0.0]
        self.gc_runs = [0, 0, 0]
        self.longest_s = 0.0
        self.stalls_over_50ms = 0
        self._stalls = []

    async def __aenter__(self) -> Self:
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._watch(), name="stall-monitor")
        gc.callbacks.append(self._gc)
        if self._name:
            self._thread = threading.Thread(target=self._sample, name="stall-sampler", daemon=True)
            self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        gc.callbacks.remove(self._gc)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _where(frame: FrameType) -> str:
    """The innermost frame of the project's own code, and what it called last."""
    inner = f"{frame.f_code.co_name}"
    f: FrameType | None = frame
    while f is not None:
        name = f.f_code.co_filename
        if any(part in name for part in OWN_CODE):
            short = name.rsplit("/", 2)
            return f"{short[-2]}/{short[-1]}:{f.f_lineno} {f.f_code.co_name} -> {inner}"
        f = f.f_back
    return f"(outside) {inner}"
