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
from typing import Any, Self

TICK_S = 0.001
SAMPLE_AFTER_S = 0.02
SAMPLE_EVERY_S = 0.003
CALLBACK_MIN_S = 0.002
OWN_CODE = ("/gateway/", "/drivers/", "/lockgate_sim/", "/fakecloud/")


@dataclass(slots=True)
class Stall:
    started: float
    seconds: float = 0.0
    where: Counter[str] = field(default_factory=Counter)

    def text(self) -> str:
        top = ", ".join(f"{n}x {w}" for w, n in self.where.most_common(3))
        return f"{self.seconds * 1000:6.1f} ms: {top or '(no sample)'}"


@dataclass(slots=True)
class SlowCallback:
    started: float
    seconds: float
    gc_s: float
    resumed: str
    suspended: str

    def text(self) -> str:
        gc_part = f" (gc {self.gc_s * 1000:.0f} ms)" if self.gc_s >= 0.001 else ""
        return f"{self.seconds * 1000:5.1f} ms{gc_part}: {self.resumed} .. {self.suspended}"


@dataclass(slots=True)
class LoopPass:
    """One stall as the loop callbacks that ran in it (those over ``CALLBACK_MIN_S``)."""

    seconds: float
    callbacks: list[SlowCallback]

    def text(self) -> str:
        counted = sum(c.seconds for c in self.callbacks)
        lines = [
            f"{self.seconds * 1000:6.1f} ms stall, {counted * 1000:.1f} ms of it in"
            f" {len(self.callbacks)} callbacks over {CALLBACK_MIN_S * 1000:.0f} ms:"
        ]
        lines += ["      " + c.text() for c in self.callbacks]
        return "\n".join(lines)


def _coro_at(callback: object) -> str:
    """Where the task a loop callback steps is (the innermost frame of the project's own code
    among its awaiting coroutines), or the callback's name."""
    task = getattr(callback, "__self__", None)
    get_coro = getattr(task, "get_coro", None)
    if get_coro is None:
        return getattr(callback, "__qualname__", repr(callback))[:80]
    coro = get_coro()
    where = "(task done)"
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        frame = frame or getattr(coro, "ag_frame", None)
        if frame is not None:
            path = frame.f_code.co_filename
            if any(own in path for own in OWN_CODE) or where == "(task done)":
                short = path.rsplit("/", 2)
                where = f"{short[-2]}/{short[-1]}:{frame.f_lineno} {frame.f_code.co_name}"
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    name = task.get_name() if isinstance(task, asyncio.Task) else "?"
    return f"[{name}] {where}"


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
        self._gc_total = 0.0
        self._gc_other_thread = False
        self.gc_other_thread_longest_s = 0.0
        """The longest collection run by another thread (it holds the GIL, so the loop too)."""
        self.slow_callbacks: list[SlowCallback] = []
        """With ``name_stalls``: the last loop callbacks that ran over ``CALLBACK_MIN_S``,
        with where the task they stepped was resumed and where it suspended again."""
        self.passes: list[LoopPass] = []
        self._handle_run: Any = None
        self._woke = asyncio.Event()
        self._last_end = time.perf_counter()
        self._gc_at_end = 0.0
        self._last_where = ""

    def _timed_run(self, handle: asyncio.Handle) -> None:
        resumed = _coro_at(handle._callback)  # type: ignore[attr-defined]
        gc0, t0 = self._gc_total, time.perf_counter()
        gap = t0 - self._last_end
        if gap >= CALLBACK_MIN_S:  # the loop itself (a poll, or freeing what a handle held)
            self.slow_callbacks.append(
                SlowCallback(self._last_end, gap, self._gc_total - self._gc_at_end,
                             "(between callbacks) after " + self._last_where, resumed)
            )
        self._handle_run(handle)
        self._last_end = time.perf_counter()
        self._gc_at_end = self._gc_total
        took = self._last_end - t0
        self._last_where = resumed
        if took >= CALLBACK_MIN_S:
            suspended = _coro_at(handle._callback)  # type: ignore[attr-defined]
            self.slow_callbacks.append(
                SlowCallback(t0, took, self._gc_total - gc0, resumed, suspended)
            )
            del self.slow_callbacks[:-200]

    def worst_passes(self, n: int = 6) -> list[LoopPass]:
        return sorted(self.passes, key=lambda s: -s.seconds)[:n]

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_other_thread = threading.get_ident() != self._loop_thread
            self._gc_started = time.perf_counter()
            self._in_gc = True
            return
        self._in_gc = False
        gen = info["generation"]
        self.gc_runs[gen] += 1
        took = time.perf_counter() - self._gc_started
        self._gc_total += took
        if self._gc_other_thread:
            self.gc_other_thread_longest_s = max(self.gc_other_thread_longest_s, took)
        self.gc_longest_s[gen] = max(self.gc_longest_s[gen], took)

    async def _watch(self) -> None:
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            self._beat = t0
            await asyncio.sleep(TICK_S)
            late = time.perf_counter() - t0 - TICK_S
            self._woke.set()
            if self._handle_run is not None and late >= SAMPLE_AFTER_S:
                ran = [c for c in self.slow_callbacks if c.started >= t0]
                self.passes.append(LoopPass(late, ran))
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
                current.where["gc (another thread)" if self._gc_other_thread else "gc"] += 1
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

    async def next_wake(self) -> None:
        """Wait for the monitor's next wake: what held the loop before now is counted by then
        (call before :meth:`reset`, or a stall in progress is counted after it)."""
        self._woke.clear()
        await self._woke.wait()

    def reset(self) -> None:
        self.gc_other_thread_longest_s = 0.0
        self.gc_longest_s = [0.0, 0.0, 0.0]
        self.gc_runs = [0, 0, 0]
        self.longest_s = 0.0
        self.longest_cpu_s = 0.0
        self.stalls_over_50ms = 0
        self._stalls = []
        self.slow_callbacks = []
        self.passes = []

    async def __aenter__(self) -> Self:
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._watch(), name="stall-monitor")
        gc.callbacks.append(self._gc)
        if self._name:
            self._thread = threading.Thread(target=self._sample, name="stall-sampler", daemon=True)
            self._thread.start()
            # Time each loop callback (bench only): a stall is the sum of one loop pass's.
            self._handle_run = asyncio.events.Handle._run
            monitor = self

            def _run(handle: asyncio.Handle) -> None:
                monitor._timed_run(handle)

            asyncio.events.Handle._run = _run  # type: ignore[method-assign,assignment]
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
        if self._handle_run is not None:
            asyncio.events.Handle._run = self._handle_run  # type: ignore[method-assign]
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._dump.close()


_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')
