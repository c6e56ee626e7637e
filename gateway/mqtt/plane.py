"""The management plane's lifetime: one MQTT v5 client at a time, reconnected with a policy.

The plane runs as one of the gateway's tasks. Its own :class:`asyncio.TaskGroup` holds what
outlives a connection (commands in progress, the lock-status poller, watchers of the locks and
the cloud sync); each connection has a TaskGroup of its own (receiving, the event publisher,
retained state), which ends when the connection does.

On every connection: a persistent session (stable client id, clean start off, a session expiry)
with a retained ``offline`` last will; subscribe to the request topics; publish ``online``
(retained), Home Assistant discovery when enabled, and every retained state document again —
so availability and state come back by themselves after a broker restart. On shutdown it
publishes ``offline`` before disconnecting (a clean disconnect does not fire the will).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from importlib import metadata
from typing import TYPE_CHECKING, Any

import aiomqtt
from aiomqtt import MqttError
from paho.mqtt.properties import Properties

from gateway.config import MqttConfig
from gateway.cooperative import after_pending_io
from gateway.mqtt.auth import Authoriser, load_operator_keys
from gateway.mqtt.claim import NameTakenError, holder_of_name
from gateway.mqtt.commands import CommandContext, CommandRouter, ha_set
from gateway.mqtt.connection import (
    BrokerOptions,
    ReconnectPolicy,
    correlation_properties,
    make_client,
    payload_bytes,
    reraise_lost_cancel,
)
from gateway.mqtt.discovery import gateway_configs, lock_configs
from gateway.mqtt.identity import GatewayIdentity
from gateway.mqtt.identity import load_or_create as load_or_create_identity
from gateway.mqtt.limits import RateLimit
from gateway.mqtt.payloads import CommandError, ErrorCode, Response, transaction_of_bytes
from gateway.mqtt.publisher import EventPublisher
from gateway.mqtt.sealed import KEYSTORE_ID, Opener, load_or_create
from gateway.mqtt.state import RetainedState, StateView, encode
from gateway.mqtt.topics import Topics
from gateway.store.outbox import OutboxEntry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.managed import ManagedGateway
    from gateway.reconciler import LockReconciler

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
GOODBYE_TIMEOUT_S = 1.0

Sleep = Callable[[float], Awaitable[None]]
ClientFactory = Callable[[], aiomqtt.Client]


def _version() -> str:
    try:
        return metadata.version("lockgate")
    except metadata.PackageNotFoundError:
        return "unknown"


async def _publish(
    client: aiomqtt.Client,
    topic: str,
    body: bytes,
    *,
    retain: bool = False,
    properties: Properties | None = None,
) -> None:
    """Publish at QoS 1 (returns once the broker acknowledged it)."""
    await client.publish(topic, body, qos=1, retain=retain, properties=properties)
    reraise_lost_cancel()


class MqttPlane:
    def __init__(
        self,
        gw: ManagedGateway,
        config: MqttConfig | None = None,
        *,
        policy: ReconnectPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        client_factory: ClientFactory | None = None,
    ) -> None:
        cfg = config or gw.config.mqtt
        self.gw = gw
        self.config = cfg
        self.topics = Topics(cfg.base_topic, gw.config.gateway_id, cfg.homeassistant_prefix)
        self.policy = policy or ReconnectPolicy(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._sleep = sleep
        self._client_factory = client_factory or self._default_client
        self._name_claimed = False
        self.name_taken = asyncio.Event()
        """Set while another gateway identity holds this ``gateway_id`` on the broker."""
        # Read the secrets and load the certificates once, at start: a bad file fails the
        # gateway's start instead of every reconnect.
        self._broker = BrokerOptions.from_config(cfg)
        self._tls = self._broker.tls_context()
        operators = load_operator_keys(cfg.operator_keys) if cfg.operator_keys else {}
        self.authoriser = Authoriser(
            operators,
            gw.config.gateway_id,
            gw.store.meta,
            gw.clock.now,
            max_age_s=cfg.command_max_age_s,
            monotonic=gw.wall_clock.monotonic,
        )
        # The key secret arguments are sealed to: created on first start, kept encrypted in
        # the store, its public half published as ``command_key``.
        own_keys = gw.store.keystore(KEYSTORE_ID)
        self.opener = Opener(load_or_create(own_keys), gw.config.gateway_id)
        # What signs every answer and retained document, and vouches for the command key.
        self.identity = GatewayIdentity(load_or_create_identity(own_keys), gw.config.gateway_id)
        log.info(
            "MQTT identity %s (fingerprint %s): operators pin it",
            self.identity.public_b64,
            self.identity.fingerprint,
        )
        self.view = StateView(
            gw,
            self.topics,
            command_key=self.opener.public_b64,
            identity=self.identity.public_b64,
            command_key_sig=self.identity.bind_command_key(self.opener.public_b64),
        )
        self.ctx = CommandContext(
            gw,
            self.view,
            timeout_s=cfg.command_timeout_s,
            commission_timeout_s=cfg.commission_timeout_s,
            on_lock_removed=self._lock_removed,
            reread_status_after=self._reread_status_after,
        )
        self.router = CommandRouter(
            self.ctx,
            self.authoriser,
            max_payload_bytes=cfg.max_payload_bytes,
            require_signed_reads=cfg.require_signed_reads,
            clock_trusted=lambda: gw.trust.assess().trusted,
            rate=RateLimit(cfg.test_credential_per_minute, monotonic=gw.wall_clock.monotonic),
            opener=self.opener,
        )
        self.publisher = EventPublisher(
            gw.store.outbox,
            self.topics.events,
            gw.config.gateway_id,
            gw.clock.now,
            on_delivered=self._delivered,
        )
        self._retained = RetainedState(sign=self.identity.signed_document)
        self._client: aiomqtt.Client | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._removed: set[str] = set()
        self._ha_pending: dict[str, bytes] = {}
        self._ha_busy: set[str] = set()
        self._inflight = 0
        self.online = asyncio.Event()
        """Set while connected, subscribed and announced; cleared when the connection ends."""
        self.offline = asyncio.Event()
        """The opposite of :attr:`online`, so either can be awaited."""
        self.offline.set()
        self.connections = 0

    # --- lifetime ----------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._poll_status(), name="mqtt-lock-status")
            tg.create_task(self._watch_cloud(), name="mqtt-watch-cloud")
            for lock_id, rec in self.gw.locks.items():
                self._watchers[lock_id] = tg.create_task(
                    self._watch_lock(lock_id, rec), name=f"mqtt-watch:{lock_id}"
                )
            tg.create_task(self._connection_loop(), name="mqtt-connection")

    def _default_client(self) -> aiomqtt.Client:
        cfg = self.config
        return make_client(
            self._broker,
            cfg.client_id or f"lockgate-{self.gw.config.gateway_id}",
            will=aiomqtt.Will(self.topics.availability, OFFLINE, qos=1, retain=True),
            session_expiry_s=cfg.session_expiry_s,
            tls_context=self._tls,
        )

    async def _connection_loop(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            failure: BaseException | None = None
            # Each connection in a task of its own: on Python 3.11 a TaskGroup whose child
            # fails leaves a cancel request counted on its parent task (``cancelling()``),
            # which must not outlive the connection it belonged to.
            session = asyncio.create_task(self._connect_and_serve(), name="mqtt-session")
            try:
                await session
            except* MqttError as group:
                failure = group.exceptions[0]
            except* Exception as group:
                failure = group.exceptions[0]
                log.exception("management plane session failed", exc_info=failure)
            self._set_online(False)
            self._client = None
            if task.cancelling():  # a cancel that a library swallowed: stop all the same
                raise asyncio.CancelledError
            delay = self.policy.next_delay(failure)
            log.log(
                logging.WARNING if self.policy.failures == 1 else logging.DEBUG,
                "MQTT broker %s:%s: %s; reconnecting in %.1fs",
                self.config.host,
                self.config.port,
                failure,
                delay,
            )
            await self._sleep(delay)

    async def _claim_name(self) -> None:
        """Refuse to take this gateway's name when another identity holds it on the broker."""
        probe = make_client(
            self._broker,
            f"lockgate-probe-{secrets.token_hex(6)}",
            tls_context=self._tls,
        )
        async with probe:
            holder = await holder_of_name(probe, self.topics)
        if holder is not None and holder != self.identity.public_b64:
            self.name_taken.set()
            raise NameTakenError(self.gw.config.gateway_id, holder)
        self.name_taken.clear()
        self._name_claimed = True

    async def _connect_and_serve(self) -> None:
        if not self._name_claimed and self._client_factory == self._default_client:
            await self._claim_name()
        client = self._client_factory()
        async with client:
            self.policy.connected()
            self.connections += 1
            try:
                await self._session(client)
            except asyncio.CancelledError:
                await self._goodbye(client)
                raise

    def _set_online(self, online: bool) -> None:
        if online:
            self.offline.clear()
            self.online.set()
        else:
            self.online.clear()
            self.offline.set()

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        self._set_online(False)
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)

    async def _session(self, client: aiomqtt.Client) -> None:
        topics = self.topics
        await client.subscribe(topics.request_filter, qos=1)
        if self.config.homeassistant_discovery:
            await client.subscribe(topics.ha_filter, qos=1)
        reraise_lost_cancel()
        await _publish(client, topics.availability, ONLINE, retain=True)
        self._client = client
        self._retained.reset()
        for lock_id in sorted(self._removed):
            await self._clear_lock_topics(client, lock_id)
        self._removed.clear()
        if self.config.homeassistant_discovery:
            await self._publish_discovery(client)
        await self._retained.publish(self._publish_retained, self.view.documents())
        log.info(
            "MQTT connected to %s:%s as %s", self.config.host, self.config.port, client.identifier
        )
        self._set_online(True)

        async def events(topic: str, body: bytes) -> None:
            await _publish(client, topic, body)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client), name="mqtt-receive")
            tg.create_task(self.publisher.run(events), name="mqtt-events")
            tg.create_task(self._state_loop(), name="mqtt-state")

    async def _publish_retained(self, topic: str, body: bytes, retain: bool) -> None:
        client = self._client
        if client is None:
            raise MqttError("not connected")
        await _publish(client, topic, body, retain=retain)

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        version = _version()
        docs = dict(gateway_configs(self.topics, version=version))
        for lock in self.gw.config.locks:
            if lock.id in self.gw.locks:
                docs.update(
                    lock_configs(
                        self.topics, lock.id, lock.display_name, lock.driver.type, version=version
                    )
                )
        for topic, doc in docs.items():
            await _publish(client, topic, encode(doc), retain=True)

    async def _clear_lock_topics(self, client: aiomqtt.Client, lock_id: str) -> None:
        topics = [self.topics.lock_state(lock_id)]
        if self.config.homeassistant_discovery:
            topics += list(lock_configs(self.topics, lock_id, "", "", version="").keys())
        for topic in topics:
            await _publish(client, topic, b"", retain=True)

    # --- receiving -----------------------------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = payload_bytes(message.payload)
            command = self.topics.command_of(topic)
            if command is not None:
                props = message.properties
                reply_to = getattr(props, "ResponseTopic", None)
                correlation = getattr(props, "CorrelationData", None)
                self._spawn_command(command, topic, payload, reply_to, correlation)
                continue
            lock_id = self.topics.lock_of_ha_set(topic)
            if lock_id is not None and self.config.homeassistant_discovery:
                self._ha_message(lock_id, payload)

    def _ha_message(self, lock_id: str, payload: bytes) -> None:
        """Home Assistant's ``set``: at most one task per lock, the latest message wins.

        Home Assistant says what state it wants, so messages that arrive while one is being
        carried out are replaced by the newest: a flood costs one task and one pending payload
        per lock, never a task per message. Unknown locks cost nothing."""
        if lock_id not in self.gw.locks:
            log.debug("Home Assistant set for unknown lock %r ignored", lock_id[:64])
            return
        self._ha_pending[lock_id] = payload
        if lock_id not in self._ha_busy:
            self._ha_busy.add(lock_id)
            self._spawn(self._ha_worker(lock_id), f"mqtt-ha:{lock_id}")

    async def _ha_worker(self, lock_id: str) -> None:
        try:
            while (payload := self._ha_pending.pop(lock_id, None)) is not None:
                await ha_set(
                    self.ctx, lock_id, payload, allow_unlock=self.config.homeassistant_unlock
                )
        finally:
            self._ha_busy.discard(lock_id)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        assert self._tg is not None
        self._tg.create_task(coro, name=name)

    def _spawn_command(
        self,
        command: str,
        topic: str,
        payload: bytes,
        reply_to: str | None,
        correlation: bytes | None,
    ) -> None:
        if not (isinstance(reply_to, str) and self.topics.usable_reply_topic(reply_to)):
            reply_to = self.topics.response(command)
        if self._inflight >= self.config.max_concurrent_commands:
            busy = Response.fail(
                CommandError(ErrorCode.BUSY, "too many commands in progress"),
                transaction_of_bytes(payload, self.config.max_payload_bytes),
            )
            self._spawn(
                self._reply(reply_to, correlation, command, payload, busy), f"mqtt-busy:{command}"
            )
            return
        self._inflight += 1
        self._spawn(
            self._command(command, topic, payload, reply_to, correlation), f"mqtt-cmd:{command}"
        )

    async def _command(
        self, command: str, topic: str, payload: bytes, reply_to: str, correlation: bytes | None
    ) -> None:
        try:
            response = await self.router.handle(command, topic, payload)
        finally:
            self._inflight -= 1
        await self._reply(reply_to, correlation, command, payload, response)

    async def _reply(
        self,
        reply_to: str,
        correlation: bytes | None,
        command: str,
        request: bytes,
        response: Response,
    ) -> None:
        """Send ``response``, signed by the gateway identity over the request it answers."""
        client = self._client
        if client is None:
            log.info("response on %s lost: not connected", reply_to)
            return
        props = None
        if correlation is not None:
            props = correlation_properties(correlation)
        body = self.identity.signed_response(command, request, response.as_dict())
        try:
            await _publish(client, reply_to, body, properties=props)
        except MqttError as err:
            log.info("response on %s lost: %s", reply_to, err)

    # --- state -----------------------------------------------------------------------------
    async def _state_loop(self) -> None:
        view = self.view
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.state_interval_s):
                    await view.dirty.wait()
                    woken = True
            await after_pending_io()  # an answer that changed a document goes out first
            # Every document at each interval; between, only what changed (a pass of one
            # lock rebuilds its document and the gateway's, not all 1 + N of them).
            stale = view.stale()
            docs = view.documents(stale if woken else None)
            await self._retained.publish(self._publish_retained, docs)

    def _delivered(self, entries: Sequence[OutboxEntry]) -> None:
        for entry in entries:
            self.view.note_event(entry.payload)

    async def _poll_status(self) -> None:
        """Bolt and battery of connected locks, now and then (never wakes a sleeping link)."""
        while True:
            for lock_id, rec in list(self.gw.locks.items()):
                if rec.handle.awake and not rec.handle.busy:
                    try:
                        await self.ctx.read_status(lock_id)
                    except CommandError as err:
                        log.debug("status of %s not read: %s", lock_id, err.code.value)
            await asyncio.sleep(self.config.lock_status_interval_s)

    def _reread_status_after(self, lock_id: str, delay: float) -> None:
        async def reread() -> None:
            await asyncio.sleep(delay)
            rec = self.gw.locks.get(lock_id)
            if rec is not None and rec.handle.connected:
                try:
                    await self.ctx.read_status(lock_id)
                except CommandError as err:
                    log.debug("status of %s not read: %s", lock_id, err.code.value)

        self._spawn(reread(), f"mqtt-reread:{lock_id}")

    async def _watch_lock(self, lock_id: str, rec: LockReconciler) -> None:
        seen: object = None
        while True:

            def changed(before: object = seen) -> bool:
                return rec.health is not before

            await rec.wait_for(changed)
            seen = rec.health
            if lock_id not in self.view.status and rec.handle.awake:
                try:
                    await self.ctx.read_status(lock_id)
                except CommandError as err:
                    log.debug("status of %s not read: %s", lock_id, err.code.value)
            self.view.changed(lock_id)

    async def _watch_cloud(self) -> None:
        synced = self.gw.sync_loop.synced
        while True:
            async with synced:
                await synced.wait()
            self.view.changed()

    async def _lock_removed(self, lock_id: str) -> None:
        watcher = self._watchers.pop(lock_id, None)
        if watcher is not None:
            watcher.cancel()
        self.view.forget(lock_id)
        client = self._client
        if client is None:
            self._removed.add(lock_id)
            return
        try:
            await self._clear_lock_topics(client, lock_id)
        except MqttError:
            self._removed.add(lock_id)
        self.view.changed()


async def mqtt_plane(gw: ManagedGateway) -> None:
    """The gateway extension (see :func:`gateway.extensions.gateway_extensions`)."""
    await MqttPlane(gw).run()
