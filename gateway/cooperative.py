"""Long CPU work that shares the event loop: give it back every few milliseconds.

A 50,000-grant sync parses, encrypts and plans for seconds; done in one go it would starve
everything else on the loop (MQTT keepalives, door decisions, other locks). Such loops call
:meth:`Slicer.tick` once per item: it returns at once until ``budget_s`` of work has passed,
then yields to the loop (``asyncio.sleep(0)``) and starts a new slice.

The garbage collector holds the loop too: a full collection walks every container object the
process holds (50,000 grants with their access methods and indexes are a few hundred thousand,
over 100 ms on a Pi-class core). :func:`settle` is called after building data that lives long
(a sync's records, a view): later collections skip what existed then.
"""

from __future__ import annotations

import asyncio
import gc
import time

SLICE_S = 0.005
"""Work done between two yields: well under the 50 ms the loop may be held at a time, with
room for a few sliced tasks whose slices fall in one loop pass, a collection, and a core
shared with other processes (measured with 10 ms: 21-66 ms stalls under load 2)."""


class Slicer:
    def __init__(self, budget_s: float = SLICE_S) -> None:
        self._budget = budget_s
        self._since = time.perf_counter()
        self.yields = 0

    async def tick(self) -> None:
        """Yield to the loop if this slice has used its budget (settling first what the
        slices kept, see :data:`SETTLE_AFTER_GEN1`)."""
        if time.perf_counter() - self._since >= self._budget:
            if gc.get_count()[2] >= SETTLE_AFTER_GEN1:
                settle()
            await let_woken_run()
            self.yields += 1
            self._since = time.perf_counter()


SETTLE_AFTER_GEN1 = 2
"""A slice ends with :func:`settle` once this many young collections (each moves up to a
few thousand survivors to the oldest generation) have run since the last full one. Sliced
work builds long-lived data (a sync's records, a view's indexes: 100,000 objects); left to
itself, the collector walks all of it at once in a full collection (measured 34-57 ms in one
slice); settled as it grows, each collection walks only what the last slices kept."""

YIELD_PASSES = 3
"""Loop passes a slice waits (see :func:`let_woken_run`)."""


async def let_woken_run() -> None:
    """Give the loop back until what the next poll of the sockets and timers wakes has run.

    One ``asyncio.sleep(0)`` is not enough: a task woken by a socket or a timer runs two loop
    passes after the event (the pass that sees the event resolves its future, the next runs
    the task), and a task that yielded once is queued ahead of it for that next pass. So a
    sliced task yielding once per slice ran two or three slices before a woken task got the
    loop (measured: 30 ms of 10 ms slices in one timer's wake, plus any collection). Waiting
    three passes (each a cheap poll with no timeout) puts the next slice behind them."""
    for _ in range(YIELD_PASSES):
        await asyncio.sleep(0)


SETTLE_MIN = 5000
"""Builds of fewer objects than this are not settled: walking them costs the collector
little, and each :func:`settle` may keep a little garbage for good."""


def settle_big(objects: int) -> None:
    """:func:`settle` if the build just made ``objects`` long-lived records (or more)."""
    if objects >= SETTLE_MIN:
        settle()


def settle() -> None:
    """Long-lived data was just built: collect the garbage, then move every object the
    collector tracks to its permanent generation (``gc.freeze``), so later collections do
    not walk them again.

    The collection walks only what arrived since the last ``settle`` (frozen objects are
    skipped), so it is short when called after every few thousand records. Frozen objects
    are still freed when their last reference goes (the records and views this is for hold
    no reference cycles); what stays is cyclic garbage made of objects that were alive when
    frozen, which is why this is called after big builds, not all the time."""
    gc.collect()
    gc.freeze()


async def after_pending_io() -> None:
    """Let what is ready to go out be written before this task's work: an answer a command
    just published is written when the loop next polls its sockets, which comes after every
    task already woken; a task woken by that same command (a lock's audit-log pass after an
    unlock, the state documents after a status change) calls this first, so its work goes
    after the answer instead of before it (measured: an unlock's answer waited ~0.6 ms for
    them)."""
    await asyncio.sleep(0)
