"""Polling one lock on a bus: access requests, new audit-log entries, keep-alive.

On RS-485 the gateway is the bus master, so a lock that needs a decision queues it and says
so in its POLL reply (the reply carries the oldest request inline, so a decision costs one
poll plus one ACCESS_ANSWER). A lock is polled every ``interval``; after a request it is
polled again at once. Polling then adapts to how busy the door is:

* **active**: a lock that asked for something, wrote a new audit-log entry, changed its flags
  (tamper, clock lost) or was just written to by the gateway (:meth:`Poller.activity`) is
  polled every ``interval``;
* **idle**: after :data:`IDLE_AFTER_POLLS` polls with nothing new it is polled less and less
  often, up to every ``idle_interval``;
* **resting**: once nothing happened for ``rest_after`` seconds, up to every
  ``rest_interval`` (idle CPU and bus time: polls are what an idle gateway spends its CPU on).

Any activity snaps it back to ``interval`` at once, so a door in use keeps the latency it
had; only the first request at a door quiet for ``rest_after`` waits up to ``rest_interval``
(well inside the 5 s a lock waits for an answer, docs/protocol.md §7.5). Locks polled every
``idle_interval`` or ``rest_interval`` are polled at the same instants (multiples of that
interval on the event loop's clock), so the idle locks of a gateway are polled in one burst,
back to back, rather than each on a wakeup of its own: measured on a 2-core box, a poll costs
about 0.1 ms of CPU right after another one and 0.6 ms after 10 ms asleep (the process goes
cold between wakeups). Failures back off with the policy (authentication failures to its
maximum); :meth:`Poller.wake` cuts a wait short (after commissioning).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from drivers.backoff import Backoff
from drivers.base import DriverContext
from drivers.errors import DriverError, LockAuthError
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.records import PollFlag
from drivers.lockproto.requests import PollReplies

log = logging.getLogger(__name__)

IDLE_AFTER_POLLS = 20
"""Polls without a request before polling slows down (3 s at the default 0.15 s)."""
IDLE_GROWTH = 1.25
"""Each further idle poll waits this much longer, up to ``idle_interval``."""


class Poller:
    def __init__(
        self,
        lock_id: str,
        ctx: DriverContext,
        get_client: Callable[[], Awaitable[LockClient]],
        *,
        interval: float,
        policy: Backoff,
        idle_interval: float | None = None,
        rest_interval: float | None = None,
        rest_after: float = 60.0,
        time: Callable[[], float] | None = None,
    ) -> None:
        """``time``: the clock idle polls are aligned on (the running loop's by default)."""
        self.lock_id = lock_id
        self._time = time
        self.interval = interval
        self.idle_interval = max(interval, idle_interval or interval)
        self.rest_interval = max(self.idle_interval, rest_interval or self.idle_interval)
        self.rest_after = rest_after
        self._idle_polls = 0
        self._active_at: float | None = None
        """When the lock last did something (``None``: not yet polled, counts from then)."""
        self._flags = PollFlag(0)
        self.resting = asyncio.Event()
        """Set while the lock is polled at the resting pace; cleared by any activity."""
        self.policy = policy
        self.polls = 0
        self.replies = PollReplies(lock_id, ctx)
        self._get_client = get_client
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def decisions(self) -> int:
        return self.replies.decisions

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"serial-poll:{self.lock_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def wake(self) -> None:
        """Poll now, at full rate again (after commissioning)."""
        self.policy.reset()
        self.activity()

    def activity(self) -> None:
        """Something happened at or to the lock (the gateway wrote to it, unlocked it): poll
        it now and at full rate, a person is likely at the door or about to be."""
        self._active(self._now())
        self._wake.set()

    def _now(self) -> float:
        return self._time() if self._time is not None else asyncio.get_running_loop().time()

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                delay = await self._cycle()
                if failing:
                    log.info("%s: lock answers polls again", self.lock_id)
                failing = False
                self.policy.reset()
            except DriverError as err:
                auth = isinstance(err, LockAuthError)
                delay = self.policy.next_delay(auth_failure=auth)
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "%s: poll failed (%s); next try in %.2f s", self.lock_id,
                        err.code, delay)
                failing = True
            except Exception:  # a bug must not end polling: access requests would go unanswered
                delay = self.policy.next_delay()
                log.exception("%s: poll failed unexpectedly; next try in %.2f s",
                              self.lock_id, delay)
                failing = True
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._wake.clear()

    async def _cycle(self) -> float:
        client = await self._get_client()
        sent = self.replies.polling()
        reply = await client.poll()
        self.polls += 1
        now = self._now()
        logged = self.replies.note_log(reply, sent)
        flags = reply.flags & ~(PollFlag.ACCESS_REQUEST | PollFlag.MORE_REQUESTS)
        if logged or flags != self._flags or self._active_at is None:
            self._flags = flags
            self._active(now)
        if reply.request is not None or reply.flags & PollFlag.MORE_REQUESTS:
            self._active(now)
            if reply.request is not None:
                await self.replies.decide(client, reply.request)
            return 0.0
        self._idle_polls += 1
        return self.next_interval(now)

    def _active(self, now: float) -> None:
        self._idle_polls = 0
        self._active_at = now
        self.resting.clear()

    def next_interval(self, now: float | None = None) -> float:
        """The wait before the next poll of a lock that asked for nothing."""
        idle = self._idle_polls - IDLE_AFTER_POLLS
        if idle <= 0:
            return self.interval
        if now is None:
            now = self._now()
        resting = self._active_at is not None and now - self._active_at >= self.rest_after
        if resting:
            self.resting.set()
        longest = self.rest_interval if resting else self.idle_interval
        grown = self.interval * IDLE_GROWTH ** min(idle, 64)
        if grown < longest:
            return grown
        # Fully idle (or resting): until the next multiple of that interval, where the other
        # such locks are polled too (never longer than the interval).
        return longest - now % longest
