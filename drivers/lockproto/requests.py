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

    def note_log(self, reply: PollReply) -> bool:
        """Tell the gateway when the lock's audit log holds entries newer than it last said;
        ``True`` when it did (something happened at the lock)."""
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
