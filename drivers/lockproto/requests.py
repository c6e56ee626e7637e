"""Serving what a lock says in its POLL replies, whatever carries the protocol.

A POLL reply names the newest entry of the lock's audit log and may carry the oldest access
request the lock is waiting on. :class:`PollReplies` turns a log that grew into
``ctx.events_waiting()`` and a request into an :class:`~drivers.base.AccessRequest` for
``ctx.decide``, whose answer goes back to the lock. When to poll (serial: the bus master's
rhythm; BLE: keep-alives and the lock's advertisements) stays with each driver.
"""

from __future__ import annotations

import logging

from drivers.base import AccessAnswer, AccessRequest, DriverContext
from drivers.errors import OutcomeUnknownError
from drivers.lockproto import convert
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.records import AccessRequestRecord, PollReply, WireKind

log = logging.getLogger(__name__)


class PollReplies:
    def __init__(self, lock_id: str, ctx: DriverContext) -> None:
        self.lock_id = lock_id
        self.decisions = 0
        """Access requests answered (allowed or denied) since the driver was built."""
        self._ctx = ctx
        self._seen_seq = 0
        self._stamp = 0
        self._read_at = 0
        self._head: int | None = None

    def polling(self) -> int:
        """Call just before a POLL goes out; hand what it returns to :meth:`note_log`."""
        self._stamp += 1
        return self._stamp

    def read_answered(self) -> None:
        """A READ_EVENTS that returned entries was answered: a POLL sent before now may name
        an older ``last_seq`` than the entries the gateway has just read."""
        self._stamp += 1
        self._read_at = self._stamp
        self._head = None

    @property
    def head(self) -> int | None:
        """The lock's ``last_seq`` from a POLL sent after the last READ_EVENTS that returned
        entries was answered (the lock answered that POLL after the READ, so its ``last_seq``
        is at least every ``seq`` read; the lock's counter never goes back but for a lost
        log); ``None`` when no such POLL came yet."""
        return self._head

    def note_log(self, reply: PollReply, sent: int) -> bool:
        """Tell the gateway when the lock's audit log holds entries newer than it last said;
        ``True`` when it did (something happened at the lock). ``sent``: what
        :meth:`polling` returned before this POLL went out."""
        if sent > self._read_at:
            self._head = reply.last_seq
        if reply.last_seq > self._seen_seq:
            self._seen_seq = reply.last_seq
            self._ctx.events_waiting()
            return True
        return False

    async def decide(self, client: LockClient, rec: AccessRequestRecord) -> None:
        """Ask the gateway about one access request and answer the lock (a failing decider
        denies: the lock must not wait for nothing)."""
        request = AccessRequest(
            lock_id=self.lock_id,
            kind=convert.WIRE_TO_KIND[WireKind(rec.kind)],
            secret=rec.secret,
            at=convert.from_unix(rec.at),
            proof=rec.proof or None,
        )
        try:
            answer = await self._ctx.decide(request)
        except Exception:
            log.exception("%s: the gateway's decider failed; denying", self.lock_id)
            answer = AccessAnswer(allow=False, reason="gateway_error")
        self.decisions += 1
        try:
            answered = await client.answer(rec.handle, answer)
        except OutcomeUnknownError as err:
            # not sent again: the lock's audit log will say whether it opened
            log.warning("%s: decision %d: %s", self.lock_id, rec.handle, err.message)
            return
        if not answered:
            log.warning("%s: lock stopped waiting for decision %d", self.lock_id, rec.handle)
