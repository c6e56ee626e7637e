"""The BLE lock driver: :class:`drivers.base.LockDriver` over the Lockgate lock protocol on GATT.

Composition, top-down: :class:`BleDriver` → :class:`~drivers.lockproto.lockclient.LockClient`
(operations, batching) → :class:`~drivers.lockproto.client.ClientSession` (handshake, sealing,
retransmission: the same session layer as serial) → :class:`~drivers.ble.carrier.GattCarrier`
(datagrams in segments over the ATT MTU) → :class:`~drivers.ble.connection.LockConnection`
(connect on demand, idle disconnect, keep-alive, reconnect) → the adapter shared by all BLE
locks (:mod:`drivers.ble.adapter`: one scanner, a connection limit). Long-term link keys live
in ``ctx.keystore`` under :func:`~drivers.lockproto.keys.keystore_name`, as for serial.

``connected`` means "in service": commissioned and reachable at the last attempt. The radio
link under it comes and goes on demand (:attr:`BleDriver.link_up`).

Besides answering the gateway, the driver listens to the lock's advertisements: a lock that
holds unacknowledged audit entries, or that comes back after being unreachable, makes it call
``ctx.events_waiting()`` (so the gateway syncs it now, not at its next backoff); a lock that
waits for an access decision makes it connect, poll and answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random as _random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from drivers.backoff import Backoff
from drivers.base import (
    BatchResult,
    Capabilities,
    Credential,
    DriverContext,
    DriverOptions,
    EventPage,
    LockDriver,
    LockStatus,
    StoredCredential,
    WaitClock,
)
from drivers.ble.adapter import AdapterRegistry, BleAdapter, default_adapter_registry
from drivers.ble.carrier import GattCarrier
from drivers.ble.connection import LockConnection
from drivers.ble.options import BleOptions
from drivers.ble.profile import AdvertFlag
from drivers.ble.scanner import Sighting
from drivers.clock import SystemClock
from drivers.errors import (
    DriverConfigError,
    LockAuthError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
)
from drivers.lockproto.client import ClientSession, LinkTiming, SessionState
from drivers.lockproto.crypto import Rng
from drivers.lockproto.keys import load_link_keys, require_link_keys, save_link_keys
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.pairing import commission, read_pairing_secret
from drivers.lockproto.records import PollFlag
from drivers.lockproto.requests import PollReplies

log = logging.getLogger(__name__)

T = TypeVar("T")


class BleDriver(LockDriver):
    type_name = "ble"
    options_model = BleOptions

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        adapters: AdapterRegistry | None = None,
        clock: WaitClock | None = None,
        rng: Rng = os.urandom,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        if not isinstance(options, BleOptions):
            raise DriverConfigError("the BLE driver needs BleOptions", lock_id=lock_id)
        self.ble_options = options
        self._adapters = adapters
        self._adapter: BleAdapter | None = None
        self._rng = rng
        self._timing = (
            LinkTiming(attempts=options.attempts)
            if options.reply_timeout is None
            else LinkTiming(lock_reply=options.reply_timeout, attempts=options.attempts)
        )
        self.carrier = GattCarrier(
            lock_id,
            max_datagram=options.max_datagram,
            write_mode=options.write_with_response,
            segment_time=options.segment_time,
        )
        self.conn = LockConnection(
            lock_id,
            options,
            self.carrier,
            clock=clock or ctx.clock or SystemClock(ctx.now),
            policy=Backoff(options.reconnect_min, options.reconnect_max, random=random),
            keepalive=self._poll_cycle,
            attention=self._attention,
            on_advert=self._advertised,
            on_status=self._flags,
            authenticated=self._authenticated,
            on_alert=ctx.alert,
        )
        self._client: LockClient | None = None
        self._in_service = False
        self._unreachable = False
        self._events_flag = False
        self.replies = PollReplies(lock_id, ctx)
        with contextlib.suppress(LockAuthError):  # damaged keys: the first operation says so
            keys = load_link_keys(ctx.keystore, lock_id)
            if keys is not None:
                self.conn.expect_device_id = keys.device_id

    # --- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._adapter is not None:
            return
        opts = self.ble_options
        registry = self._adapters or default_adapter_registry()
        self._adapter = await registry.acquire(
            opts.adapter, max_connections=opts.max_connections, backend=opts.backend
        )
        self.conn.start(self._adapter)

    async def close(self) -> None:
        self._in_service = False
        await self.conn.close()
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            await (self._adapters or default_adapter_registry()).release(adapter)

    # --- keys and session --------------------------------------------------------------------
    async def _ready(self) -> LockClient:
        await self.start()
        keys = require_link_keys(self.ctx.keystore, self.lock_id)
        if self._client is None or self._client.session.keys != keys:
            session = ClientSession(
                self.carrier, keys, lock_id=self.lock_id, rng=self._rng, timing=self._timing
            )
            self._client = LockClient(session)
            self.conn.expect_device_id = keys.device_id
        return self._client

    def _authenticated(self) -> bool:
        """Whether the session on the current link completed its handshake (the device
        there holds the lock's keys)."""
        client = self._client
        return client is not None and client.session.state is SessionState.OPEN

    @property
    def decisions(self) -> int:
        return self.replies.decisions

    @property
    def session(self) -> ClientSession | None:
        return self._client.session if self._client else None

    @property
    def link_up(self) -> bool:
        return self.conn.link_up

    @property
    def awake(self) -> bool:
        """In service and the radio link up now (it drops after ``idle_disconnect``)."""
        return self._in_service and self.conn.link_up

    async def _run(self, op: Callable[[LockClient], Awaitable[T]]) -> T:
        """One operation, on a link brought up for it; tried again on a fresh link when the
        link drops under it (every operation of the protocol is idempotent)."""
        client = await self._ready()
        attempts = self.ble_options.op_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self.conn.operation():
                    result = await op(client)
            except (LockAuthError, ProtocolError):
                self._in_service = False
                raise
            except LockLinkError as err:
                if attempt < attempts:
                    log.debug("%s: %s (%s); trying again", self.lock_id, err.message, err.code)
                    continue
                if isinstance(err, LockOfflineError | LockTimeoutError):
                    self._in_service = False
                    self._unreachable = True
                raise
            self._unreachable = False
            return result
        raise AssertionError("unreachable")

    # --- link -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._in_service

    async def connect(self) -> None:
        async def open_session(client: LockClient) -> None:
            await client.session.open()
            await client.device_info(refresh=True)

        await self._run(open_session)
        self._in_service = True

    async def disconnect(self) -> None:
        self._in_service = False
        if self._client is not None:
            self._client.session.drop()
        await self.conn.disconnect()

    async def commission(self, pairing_secret: str) -> None:
        secret = read_pairing_secret(pairing_secret, lock_id=self.lock_id)
        await self.start()
        try:
            async with self.conn.operation():
                keys = await commission(
                    self.carrier, secret, lock_id=self.lock_id, rng=self._rng, timing=self._timing
                )
        except LockAuthError:
            if load_link_keys(self.ctx.keystore, self.lock_id) is None:
                raise
            await self.connect()  # already ours: commissioning again is a no-op
            return
        save_link_keys(self.ctx.keystore, self.lock_id, keys)
        self._client = None
        self.conn.expect_device_id = keys.device_id
        log.info("%s: commissioned (device %s)", self.lock_id, keys.device_id.hex())
        await self.connect()

    # --- operations -------------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        return await self._run(lambda c: c.capabilities())

    async def list_credentials(self) -> list[StoredCredential]:
        return await self._run(lambda c: c.list_credentials())

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        return await self._run(lambda c: c.put_credentials(batch))

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        return await self._run(lambda c: c.delete_credentials(credential_ids))

    async def lock(self) -> None:
        await self._run(lambda c: c.lock())

    async def unlock(self, hold_seconds: float | None = None) -> None:
        await self._run(lambda c: c.unlock(hold_seconds))

    async def status(self) -> LockStatus:
        return await self._run(lambda c: c.status())

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        return await self._run(lambda c: c.fetch_events(after_seq, limit))

    async def ack_events(self, up_to_seq: int) -> None:
        await self._run(lambda c: c.ack_events(up_to_seq))

    async def set_time(self, t: datetime) -> None:
        await self._run(lambda c: c.set_time(t))

    # --- what the lock says on its own ------------------------------------------------------
    def _advertised(self, sighting: Sighting) -> None:
        if self._unreachable:
            self._unreachable = False
            log.info("%s: advertising again", self.lock_id)
            self.ctx.events_waiting()
        if sighting.advert is not None:
            self._flags(sighting.advert.flags)

    def _flags(self, flags: AdvertFlag) -> None:
        """The lock's state hint, from its advertisement or its status characteristic."""
        events = bool(flags & AdvertFlag.EVENTS_WAITING)
        if events and not self._events_flag:
            self.ctx.events_waiting()
        self._events_flag = events
        if (
            flags & AdvertFlag.ACCESS_REQUEST
            and load_link_keys(self.ctx.keystore, self.lock_id) is not None
        ):
            self.conn.attention()

    async def _attention(self) -> None:
        client = await self._ready()
        async with self.conn.operation(user=False):
            await self._poll(client)

    async def _poll_cycle(self) -> None:
        """The keep-alive: a POLL (access requests, newest audit entry) on the open link."""
        await self._poll(await self._ready())

    async def _poll(self, client: LockClient) -> None:
        reply = await client.poll()
        self.replies.note_log(reply)
        while reply.request is not None:
            await self.replies.decide(client, reply.request)
            if not reply.flags & PollFlag.MORE_REQUESTS:
                break
            reply = await client.poll()
