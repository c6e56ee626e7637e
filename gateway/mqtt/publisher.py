"""Access events from the outbox to the broker, in order, none lost.

An event leaves the outbox (is marked delivered) only after its QoS 1 publish returned, which
aiomqtt does when the broker's PUBACK arrived. Publishes go one after another on one
connection, so acknowledgements come back in order and, when the connection drops, what was
acknowledged is a prefix of the batch: that prefix is marked delivered and the rest is sent
again on the next connection. While the broker is away nothing is read from the outbox; the
events wait on disk and go out in ``seq`` order when it returns.

Delivery is at least once: an event whose PUBACK was lost with the connection is sent again.
Each carries its stable ``event_id`` so a consumer drops the duplicate.

aiomqtt does not report PUBACK reason codes, so a publish the broker's ACL refused looks
delivered; the documented ACL allows the events topic (docs/mqtt.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from gateway.store.db import StoreFullError
from gateway.store.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)

BATCH = 100

PublishQos1 = Callable[[str, bytes], Awaitable[None]]


class EventPublisher:
    def __init__(
        self,
        outbox: Outbox,
        topic: str,
        gateway_id: str,
        now: Callable[[], datetime],
        *,
        on_delivered: Callable[[Sequence[OutboxEntry]], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        self._outbox = outbox
        self._topic = topic
        self._gateway_id = gateway_id
        self._now = now
        self._on_delivered = on_delivered
        self._batch = batch
        self.delivered = 0
        self._unmarked: list[int] = []
        """Delivered, but the disk was full when they were to be marked so."""

    def encode(self, entry: OutboxEntry) -> bytes:
        body = dict(entry.payload)
        body["event_id"] = entry.event_id
        body["gateway_id"] = self._gateway_id
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    async def _mark(self, seqs: list[int]) -> None:
        """Mark delivered; on a full disk keep them here (and skip them) until there is room."""
        self._unmarked.extend(seqs)
        try:
            await self._outbox.mark_delivered(self._unmarked, self._now())
        except StoreFullError:
            return
        self._unmarked.clear()

    async def run(self, publish: PublishQos1) -> None:
        """Publish until cancelled or the connection fails (the error propagates)."""
        outbox = self._outbox
        while True:
            outbox.changed.clear()
            if self._unmarked:
                await self._mark([])
            after = self._unmarked[-1] if self._unmarked else 0
            entries = outbox.pending(self._batch, after)
            if not entries:
                await outbox.changed.wait()
                continue
            await self._send(publish, entries)

    async def _send(self, publish: PublishQos1, entries: Sequence[OutboxEntry]) -> None:
        acked: list[OutboxEntry] = []
        try:
            for entry in entries:
                await publish(self._topic, self.encode(entry))
                acked.append(entry)
        finally:
            # Also on failure or cancellation: what the broker acknowledged is done.
            if acked:
                await self._mark([e.seq for e in acked])
                self.delivered += len(acked)
                if self._on_delivered is not None:
                    self._on_delivered(acked)
                log.debug("delivered %d events (up to seq %d)", len(acked), acked[-1].seq)
