"""Building an aiomqtt client (TLS, credentials, TCP_NODELAY, MQTT v5 session) and the
reconnect policy. Shared by the gateway's plane and ``lockgate ctl``; nothing here runs a loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from aiomqtt import MqttError
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

from drivers.backoff import Backoff
from gateway.config import MqttConfig

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
"""Without it on both sides, Nagle plus delayed ACK costs 44-88 ms per QoS 1 exchange."""

_AUTH_REFUSALS = frozenset({4, 5, 0x86, 0x87, 0x8C})
"""CONNACK codes meaning "not with these credentials": v3.1.1 4/5, v5 0x86/0x87/0x8C."""


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    host: str = "localhost"
    port: int = 1883
    transport: str = "tcp"
    unix_socket: Path | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = 30

    @classmethod
    def from_config(cls, cfg: MqttConfig) -> BrokerOptions:
        """Secrets are read here, from their files (checked to be private)."""
        key_path: Path | None = None
        if cfg.client_key is not None:
            cfg.client_key.read_bytes()  # refuses a key file others can read
            key_path = cfg.client_key.path()
        return cls(
            host=cfg.host,
            port=cfg.port,
            transport=cfg.transport,
            unix_socket=cfg.unix_socket,
            username=cfg.username,
            password=cfg.password.read_text() if cfg.password is not None else None,
            tls=cfg.tls,
            ca_file=cfg.ca_file,
            client_cert=cfg.client_cert,
            client_key=key_path,
            keepalive_s=cfg.keepalive_s,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """Server verification always (the CA file, or the system's CAs), hostname checked;
        a client certificate when configured."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_cert is not None:
            ctx.load_cert_chain(
                str(self.client_cert), str(self.client_key) if self.client_key else None
            )
        return ctx


def reraise_lost_cancel() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and the request got lost.

    On Python 3.11, :func:`asyncio.wait_for` (which aiomqtt awaits PUBACKs and SUBACKs with)
    returns the result and drops a cancellation that arrives in the same loop turn as the
    acknowledgement. A loop that carried on would hang its TaskGroup's shutdown forever, so
    call this after every aiomqtt await in a loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def payload_bytes(payload: object) -> bytes:
    """aiomqtt hands payloads as bytes, but types them wider."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


_PUBLISH = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]

_CORRELATION_DATA = 9
"""MQTT v5's property identifier of Correlation Data (binary data: two-byte length, bytes)."""


class _CorrelationOnly(Properties):
    """PUBLISH properties that hold the correlation data and nothing else, packed once.

    paho packs a property set by walking its table of 27 names with string operations for
    each, and sets an attribute by walking it again; for one property that is most of the
    cost of sending an answer (about 40 us here). This set is packed by MQTT v5's rule for
    its one property (3.3.2.3: the properties' length as a variable byte integer, then the
    identifier, a two-byte length and the bytes) and cannot be changed afterwards, so what
    it packs is always what it holds. Tested byte for byte against paho's own packing."""

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError("a response's correlation properties are not changed once made")

    def __delattr__(self, name: str) -> None:
        raise TypeError("a response's correlation properties are not changed once made")

    def pack(self) -> bytes:
        packed: bytes = self.__dict__["_packed"]
        return packed


def correlation_properties(correlation: bytes) -> Properties:
    """A response's PUBLISH properties: its correlation data (at most 65,535 bytes, as the
    broker delivered it)."""
    if len(correlation) > 0xFFFF:
        raise ValueError("correlation data is longer than 65535 bytes")
    prop = bytes([_CORRELATION_DATA]) + struct.pack("!H", len(correlation)) + correlation
    props = object.__new__(_CorrelationOnly)
    # paho's tables (names, types, identifiers) are shared with an empty set, as a copy does.
    props.__dict__.update(_PUBLISH.__dict__)
    props.__dict__["CorrelationData"] = correlation
    props.__dict__["_packed"] = VariableByteIntegers.encode(len(prop)) + prop  # type: ignore[no-untyped-call]
    return props


def v5_properties(packet: int, **values: object) -> Properties:
    props = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


def make_client(
    opts: BrokerOptions,
    identifier: str,
    *,
    will: aiomqtt.Will | None = None,
    session_expiry_s: int | None = None,
    timeout_s: float = 10.0,
    tls_context: ssl.SSLContext | None = None,
) -> aiomqtt.Client:
    """An MQTT v5 client. With ``session_expiry_s`` the session persists (clean start off,
    on every connection, not only the first); without, it is a clean, throw-away session."""
    persistent = session_expiry_s is not None
    props = (
        v5_properties(PacketTypes.CONNECT, SessionExpiryInterval=session_expiry_s)
        if persistent
        else None
    )
    unix = opts.transport == "unix"
    client = aiomqtt.Client(
        str(opts.unix_socket) if unix and opts.unix_socket else opts.host,
        opts.port,
        username=opts.username,
        password=opts.password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        transport="unix" if unix else "tcp",
        timeout=timeout_s,
        keepalive=opts.keepalive_s,
        clean_start=not persistent,
        properties=props,
        tls_context=tls_context or opts.tls_context(),
        socket_options=() if unix else NODELAY,
    )
    client.pending_calls_threshold = 200
    return client


def is_auth_refusal(err: BaseException) -> bool:
    if not isinstance(err, MqttConnectError):
        return False
    rc = err.rc
    value = rc if isinstance(rc, int) else getattr(rc, "value", None)
    return value in _AUTH_REFUSALS


class ReconnectPolicy:
    """Capped exponential backoff with jitter; a refused login waits the maximum. The backoff
    resets only after a connection that stayed up ``stable_after_s``, so a broker that accepts
    and drops at once (a duplicate client id) is not hammered."""

    def __init__(
        self,
        minimum_s: float,
        maximum_s: float,
        *,
        stable_after_s: float = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._backoff = backoff or Backoff(minimum_s, max(minimum_s, maximum_s))
        self._stable_after = stable_after_s
        self._up_since: float | None = None
        self.failures = 0

    def connected(self) -> None:
        self._up_since = asyncio.get_running_loop().time()

    def next_delay(self, err: BaseException | None) -> float:
        if self._up_since is not None:
            lasted = asyncio.get_running_loop().time() - self._up_since
            self._up_since = None
            if lasted >= self._stable_after:
                self._backoff.reset()
                self.failures = 0
        self.failures += 1
        if err is not None and (is_auth_refusal(err) or getattr(err, "wait_longest", False)):
            return self._backoff.give_up_for_now()
        return self._backoff.next_delay()


__all__ = [
    "NODELAY",
    "BrokerOptions",
    "MqttError",
    "ReconnectPolicy",
    "correlation_properties",
    "is_auth_refusal",
    "make_client",
    "payload_bytes",
    "reraise_lost_cancel",
    "v5_properties",
]
