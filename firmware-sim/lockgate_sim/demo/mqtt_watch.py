"""A consumer on the demo's broker: what a fleet backend would see of the gateway.

It subscribes to the gateway's access events (QoS 1) and its retained availability, and keeps
count, so the live view can show that MQTT carries every event the gateway recorded.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from gateway.mqtt.connection import BrokerOptions, make_client, payload_bytes
from gateway.mqtt.topics import Topics

SUBSCRIBE_TIMEOUT_S = 5.0


class EventWatch:
    def __init__(self, host: str, port: int, topics: Topics) -> None:
        self.host = host
        self.port = port
        self.topics = topics
        self.event_ids: set[str] = set()
        """Distinct events received (delivery is at least once: a repeat has the same id)."""
        self.received = 0
        self.availability: str | None = None
        self.error: str | None = None
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Condition()

    @property
    def events(self) -> int:
        return len(self.event_ids)

    async def run(self) -> None:
        client = make_client(
            BrokerOptions(host=self.host, port=self.port), f"demo-watch-{uuid.uuid4().hex[:8]}"
        )
        try:
            async with client:
                await client.subscribe(self.topics.events, qos=1)
                await client.subscribe(self.topics.availability, qos=1)
                self.subscribed.set()
                async for message in client.messages:
                    self._take(message.topic.value, payload_bytes(message.payload))
                    async with self._changed:
                        self._changed.notify_all()
        except aiomqtt.MqttError as err:
            self.error = str(err)
            raise

    def _take(self, topic: str, body: bytes) -> None:
        if topic == self.topics.availability:
            self.availability = body.decode("utf-8", "replace") or None
            return
        self.received += 1
        try:
            event: Any = json.loads(body)
        except ValueError:
            return
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            self.event_ids.add(event["event_id"])

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after some message (bound it with a timeout)."""
        async with self._changed:
            await self._changed.wait_for(predicate)


@asynccontextmanager
async def watching(host: str, port: int, topics: Topics) -> AsyncIterator[EventWatch]:
    """Run an :class:`EventWatch` for the duration of the block, subscribed before it starts."""
    watch = EventWatch(host, port, topics)
    task = asyncio.create_task(watch.run(), name="demo-mqtt-watch")
    try:
        waiter = asyncio.create_task(watch.subscribed.wait(), name="demo-mqtt-subscribed")
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not watch.subscribed.is_set():
            task.result()  # the connection failed: raise why
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
