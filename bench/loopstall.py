"""How long the event loop was held: a task that asks to wake every millisecond and records
how late it woke. Used by the benches, never by tests (no timing assertions there).

With ``name_stalls=True`` a watchdog thread also names the slow slices: while the loop has not
woken for ``SAMPLE_AFTER_S``, it samples the loop thread's stack every few milliseconds, and
:meth:`StallMonitor.worst` gives the longest stalls with the project code they were spent in.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
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
        self.longest_cpu_s = 0.0
        """The most CPU time the loop's thread spent between two wakes of the monitor."""
        self.stalls_over_50ms = 0
        self._task: asyncio.Task[None] | None = None
        self._name = name_stalls
        self._beat = time.perf_counter()
        self._stalls: list[Stall] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread = threading.get_ident()
        self._dump = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __aexit__
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
            t0, c0 = time.perf_counter(), time.thread_time()
            self._beat = t0
            await asyncio.sleep(TICK_S)
            late = time.perf_counter() - t0 - TICK_S
            self.longest_s = max(self.longest_s, late)
            self.stalls_over_50ms += late > 0.05
            # The loop thread's own CPU time over the same span: a stall much longer than it
            # was the machine giving the CPU to other processes, not our code holding the loop.
            self.longest_cpu_s = max(self.longest_cpu_s, time.thread_time() - c0)

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
            if self._in_gc:
                current.where["gc"] += 1
                continue
            where = self._where()
            if where is not None:
                current.where[where] += 1

    def _where(self) -> str | None:
        """The innermost frame of the project's own code on the loop's thread, and the
        function it was in last. Read with faulthandler (C, no frame objects): walking another
        thread's frame objects from Python (``f_back``) can crash CPython 3.11."""
        dump = self._dump
        dump.seek(0)
        dump.truncate()
        faulthandler.dump_traceback(dump, all_threads=True)
        dump.flush()
        dump.seek(0)
        text = dump.read().decode(errors="replace")
        block = ""
        for part in re.split(r"\n(?=(?:Current thread|Thread) 0x)", text):
            if f"0x{self._loop_thread:016x}" in part.split("\n", 1)[0]:
                block = part
        frames = _FRAME.findall(block)
        if not frames:
            return None
        inner = frames[0][2]
        for path, line, func in frames:
            if any(own in path for own in OWN_CODE):
                short = path.rsplit("/", 2)
                return f"{short[-2]}/{short[-1]}:{line} {func} -> {inner}"
        return f"(outside) {inner}"

    def worst(self, n: int = 8) -> list[Stall]:
        return sorted(self._stalls, key=lambda s: -s.seconds)[:n]

    def reset(self) -> None:
        self.gc_longest_s = [0.0, 0.0, 0.0]
        self.gc_runs = [0, 0, 0]
        self.longest_s = 0.0
        self.longest_cpu_s = 0.0
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
        self._dump.close()


_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')
