"""A gateway with one simulated lock and its management plane, and the MQTT peers that talk to
it: a requester (an operator's tool), a watcher of retained topics, an event consumer.

Used by the tests and by bench/bench_mqtt.py. The cloud is an unreachable local port unless a
URL is given: the management plane must work with the cloud down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lockgate_sim.broker import Mosquitto, free_port
from lockgate_sim.driver import SimDriver
from lockgate_sim.lock import SimLock
from paho.mqtt.packettypes import PacketTypes

from drivers.base import BoltState, LockDriver
from drivers.registry import DriverRegistry
from gateway.clock import TimeSource
from gateway.config import parse_config
from gateway.daemon import Gateway
from gateway.models import AccessMethod, CloudSnapshot, Grant
from gateway.mqtt.auth import new_nonce, public_key_b64, sign
from gateway.mqtt.connection import (
    BrokerOptions,
    ReconnectPolicy,
    make_client,
    payload_bytes,
    v5_properties,
)
from gateway.mqtt.identity import verify_response
from gateway.mqtt.plane import MqttPlane, Sleep
from gateway.mqtt.sealed import public_key_from_b64, seal
from gateway.mqtt.topics import Topics

GATEWAY_ID = "gw-test"
WAIT = 5.0
"""Upper bound on any single wait in these tests; they normally take milliseconds."""


# --- operators ------------------------------------------------------------------------------
@dataclass
class Operators:
    path: Path
    keys: dict[str, Ed25519PrivateKey]

    def signer(self, name: str) -> tuple[str, Ed25519PrivateKey]:
        return name, self.keys[name]


def write_operator_keys(directory: Path) -> Operators:
    roles = {"vera": "viewer", "olga": "operator", "ada": "admin"}
    keys = {name: Ed25519PrivateKey.generate() for name in roles}
    lines = []
    for name, role in roles.items():
        lines += [
            "[[operator]]",
            f'name = "{name}"',
            f'public_key = "{public_key_b64(keys[name].public_key())}"',
            f'role = "{role}"',
            "",
        ]
    path = directory / "operators.toml"
    path.write_text("\n".join(lines))
    return Operators(path, keys)


# --- the gateway ----------------------------------------------------------------------------
@dataclass
class Site:
    gw: Gateway
    plane: MqttPlane
    topics: Topics
    operators: Operators
    broker: Mosquitto

    @property
    def identity(self) -> str:
        """The gateway's identity (base64), that signs its answers."""
        return self.plane.identity.public_b64

    @property
    def sim(self) -> SimLock:
        return cast(SimDriver, self.gw.locks["front"].handle.driver).sim

    def bolt(self) -> BoltState:
        return self.sim.bolt

    def load(self, grants: list[Grant], methods: list[AccessMethod]) -> None:
        """Put cloud data in the store as a sync would, and wake the locks."""
        snap = CloudSnapshot(grants, methods, [], {}, [])
        self.gw.store.cloud.apply_snapshot(snap, self.gw.clock.now())
        for rec in self.gw.locks.values():
            rec.wake()


def site_config(
    tmp: Path,
    broker: Mosquitto,
    operators: Operators,
    *,
    mqtt: dict[str, Any] | None = None,
    cloud_url: str | None = None,
    cloud_key: str = "seam_test_unreachable",
    locks: tuple[str, ...] = ("front",),
    lock_drivers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``lock_drivers`` (lock id → driver table) replaces the ``sim`` locks named by ``locks``."""
    drivers = lock_drivers or {lock: {"type": "sim"} for lock in locks}
    tmp.mkdir(parents=True, exist_ok=True)
    api_key = tmp / "cloud.key"
    if not api_key.exists():
        api_key.write_text(cloud_key)
        api_key.chmod(0o600)
    mqtt_cfg: dict[str, Any] = {
        "enabled": True,
        "host": broker.host,
        "port": broker.port,
        "operator_keys": str(operators.path),
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.2,
        "command_timeout_s": 2.0,
        "state_interval_s": 1.0,
        "keepalive_s": 10,
    }
    mqtt_cfg.update(mqtt or {})
    return {
        "gateway_id": GATEWAY_ID,
        "cloud": {
            "endpoint": cloud_url or f"http://127.0.0.1:{free_port()}",
            "api_key": {"file": str(api_key)},
            "max_retries": 0,
            "request_timeout_s": 2.0,
            "poll_interval_s": 3600,
        },
        "store": {"path": str(tmp / "lockgate.db"), "key": {"file": str(tmp / "store.key")}},
        "locks": [
            {
                "id": lock,
                "name": f"{lock.title()} door",
                "space_ids": ["space-a"],
                "driver": driver,
            }
            for lock, driver in drivers.items()
        ],
        "mqtt": mqtt_cfg,
    }


@asynccontextmanager
async def running_site(
    tmp: Path,
    broker: Mosquitto,
    operators: Operators,
    *,
    mqtt: dict[str, Any] | None = None,
    cloud_url: str | None = None,
    cloud_key: str = "seam_test_unreachable",
    sleep: Sleep | None = None,
    clock: TimeSource | None = None,
    driver: type[LockDriver] = SimDriver,
    kernel_synchronised: Callable[[], bool | None] = lambda: True,
    registry: DriverRegistry | None = None,
    lock_drivers: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Site]:
    registry = registry or DriverRegistry([driver])
    data = site_config(
        tmp,
        broker,
        operators,
        mqtt=mqtt,
        cloud_url=cloud_url,
        cloud_key=cloud_key,
        lock_drivers=lock_drivers,
    )
    cfg = parse_config(data, registry, "test")
    made: asyncio.Future[MqttPlane] = asyncio.get_running_loop().create_future()

    async def mqtt_plane(gw: Gateway) -> None:
        try:
            plane = MqttPlane(
                gw,
                policy=ReconnectPolicy(cfg.mqtt.reconnect_min_s, cfg.mqtt.reconnect_max_s),
                sleep=sleep or asyncio.sleep,
            )
        except Exception as err:
            made.set_exception(err)
            raise
        made.set_result(plane)
        await plane.run()

    async with Gateway(
        cfg,
        registry,
        clock=clock,
        kernel_synchronised=kernel_synchronised,
        extra_tasks=[mqtt_plane],
    ) as gw, gw.serving():
        async with asyncio.timeout(WAIT):
            plane = await made
            await plane.online.wait()
        yield Site(gw, plane, plane.topics, operators, broker)


# --- peers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seal:
    """An argument to send sealed to the gateway's command key: ``{"secret": Seal("1234")}``.

    :meth:`Requester.request` seals it for the request's own nonce, to ``key`` (base64) when
    given (e.g. another gateway's), else to the key the gateway's ``status`` reports."""

    value: str
    key: str | None = None

    def __repr__(self) -> str:
        return "Seal(***)"


def broker_options(broker: Mosquitto, **overrides: Any) -> BrokerOptions:
    return BrokerOptions(host=broker.host, port=broker.port, **overrides)


class Requester:
    """An operator's tool: sends requests (raw bytes or built), awaits the matching answer.

    With ``identity`` (the gateway's, base64), every answer to a command's request topic must
    verify as the gateway's answer to the request's bytes, as ``lockgate ctl`` checks it."""

    def __init__(
        self,
        opts: BrokerOptions,
        topics: Topics,
        *,
        v5: bool = True,
        identity: str | None = None,
    ) -> None:
        self.topics = topics
        self.v5 = v5
        self.identity = identity
        self._client = make_client(opts, f"requester-{uuid.uuid4().hex[:8]}")
        self._waiting: dict[bytes | str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.reply_to = f"{topics.response_prefix}req-{uuid.uuid4().hex[:8]}"
        self.command_key: str | None = None
        """The gateway's command key (base64), fetched with ``status`` when first needed."""

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.topics.response_prefix}#", qos=1)
        self._reader = asyncio.create_task(self._read(), name="requester-read")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        await self._client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        async for message in self._client.messages:
            try:
                body = json.loads(payload_bytes(message.payload))
            except ValueError:
                continue
            corr = getattr(message.properties, "CorrelationData", None)
            key: bytes | str | None = corr if corr is not None else None
            if key is None and isinstance(body, dict) and isinstance(body.get("transaction"), str):
                key = body["transaction"]
            fut = self._waiting.pop(key, None) if key is not None else None
            if fut is not None and not fut.done():
                fut.set_result(body)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        await self._client.publish(topic, payload, qos=1, retain=retain)

    async def raw(
        self,
        command: str,
        payload: bytes,
        *,
        transaction: str | None = None,
        topic: str | None = None,
    ) -> dict[str, Any]:
        """Publish ``payload`` as is (to the command's request topic unless ``topic`` says
        otherwise); await the answer, matched by correlation data or by transaction."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        props = None
        if self.v5:
            corr = os.urandom(8)
            self._waiting[corr] = fut
            props = v5_properties(
                PacketTypes.PUBLISH, ResponseTopic=self.reply_to, CorrelationData=corr
            )
        else:
            assert transaction is not None, "a v3.1.1 request is matched by its transaction"
            self._waiting[transaction] = fut
        target = topic or self.topics.request(command)
        await self._client.publish(target, payload, qos=1, properties=props)
        async with asyncio.timeout(WAIT):
            answer = await fut
        if self.identity is not None and topic is None:
            verify_response(self.identity, self.topics.gateway_id, command, payload, answer)
        return answer

    async def request(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        *,
        sign_as: tuple[str, Ed25519PrivateKey] | None = None,
        ts_ms: int | None = None,
        nonce: str | None = None,
        auth: dict[str, Any] | None = None,
        transaction: str | None = None,
    ) -> dict[str, Any]:
        args = args or {}
        if any(isinstance(v, Seal) for v in args.values()):
            nonce = nonce or new_nonce()
            args = await self.sealed_args(command, args, nonce)
        transaction = transaction or uuid.uuid4().hex
        envelope: dict[str, Any] = {"transaction": transaction, "args": args}
        if sign_as is not None:
            name, key = sign_as
            envelope["auth"] = sign(
                key,
                name,
                command,
                args,
                gateway_id=self.topics.gateway_id,
                topic=self.topics.request(command),
                ts=ts_ms if ts_ms is not None else int(time.time() * 1000),
                nonce=nonce,
            )
        if auth is not None:
            envelope["auth"] = auth
        body = json.dumps(envelope).encode()
        return await self.raw(command, body, transaction=transaction)

    async def fetch_command_key(self) -> str:
        """Unsigned, so that it moves no operator's replay floor."""
        if self.command_key is None:
            r = await self.request("status")
            assert r["status"] == "ok", r
            self.command_key = r["data"]["command_key"]
            assert isinstance(self.command_key, str)
        return self.command_key

    async def sealed_args(
        self,
        command: str,
        args: dict[str, Any],
        nonce: str,
    ) -> dict[str, Any]:
        """``args`` with every :class:`Seal` sealed for a request signed with ``nonce``."""
        out = dict(args)
        for name, value in args.items():
            if isinstance(value, Seal):
                key = value.key or await self.fetch_command_key()
                out[name] = seal(
                    public_key_from_b64(key),
                    value.value,
                    gateway_id=self.topics.gateway_id,
                    command=command,
                    field=name,
                    nonce=nonce,
                )
        return out


class Watcher:
    """Subscribes to topics and keeps the latest payload of each; await a condition on them."""

    def __init__(self, opts: BrokerOptions, *filters: str) -> None:
        self._client = make_client(opts, f"watcher-{uuid.uuid4().hex[:8]}")
        self._filters = filters
        self.latest: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes, bool]] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        for f in self._filters:
            await self._client.subscribe(f, qos=1)
        self._reader = asyncio.create_task(self._read(), name="watcher-read")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._reader
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        async for message in self._client.messages:
            body = payload_bytes(message.payload)
            self.latest[message.topic.value] = body
            self.history.append((message.topic.value, body, message.retain))
            async with self._changed:
                self._changed.notify_all()

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._client.publish(topic, payload, qos=1)

    def json(self, topic: str) -> Any:
        body = self.latest.get(topic)
        return None if not body else json.loads(body)

    async def until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)


@dataclass
class Consumer:
    """A fleet backend's event consumer: a persistent session (fixed id, clean start off) at
    QoS 1, reconnecting by itself while the broker is away."""

    opts: BrokerOptions
    topic: str
    identifier: str = "event-consumer"
    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: int = 0

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._subscribed = asyncio.Event()

    async def run(self) -> None:
        while True:
            client = make_client(self.opts, self.identifier, session_expiry_s=3600)
            try:
                async with client:
                    self.sessions += 1
                    await client.subscribe(self.topic, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        self.events.append(json.loads(payload_bytes(message.payload)))
                        async with self._changed:
                            self._changed.notify_all()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.005)

    async def subscribed(self) -> None:
        async with asyncio.timeout(WAIT):
            await self._subscribed.wait()

    async def until_count(self, n: int, within: float = WAIT) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.events) >= n)


@asynccontextmanager
async def running(coro: Awaitable[None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run a background coroutine for the duration of a block, then cancel it."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
