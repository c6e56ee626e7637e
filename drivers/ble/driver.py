"""The BLE lock driver: the Lockgate lock protocol on GATT.

A :class:`~drivers.lockproto.driver.ProtocolDriver` (session, operations, commissioning: the
same as serial) whose carrier is a :class:`~drivers.ble.carrier.GattCarrier`
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
from collections.abc import Awaitable, Callable
from typing import TypeVar

from drivers.backoff import Backoff
from drivers.base import DriverContext, DriverOptions, WaitClock
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
from drivers.lockproto.carrier import Carrier
from drivers.lockproto.client import LinkTiming, SessionState
from drivers.lockproto.crypto import Rng
from drivers.lockproto.driver import ProtocolDriver
from drivers.lockproto.keys import LinkKeys
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.records import PollFlag
from drivers.lockproto.requests import PollReplies

log = logging.getLogger(__name__)

T = TypeVar("T")


class BleDriver(ProtocolDriver):
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
        if not isinstance(options, BleOptions):
            raise DriverConfigError("the BLE driver needs BleOptions", lock_id=lock_id)
        timing = (
            LinkTiming(attempts=options.attempts)
            if options.reply_timeout is None
            else LinkTiming(lock_reply=options.reply_timeout, attempts=options.attempts)
        )
        super().__init__(lock_id, options, ctx, timing=timing, rng=rng)
        self.ble_options = options
        self._adapters = adapters
        self._adapter: BleAdapter | None = None
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
        self._in_service = False
        self._unreachable = False
        self._events_flag = False
        self.replies = PollReplies(lock_id, ctx)
        with contextlib.suppress(LockAuthError):  # damaged keys: the first operation says so
            keys = self._link_keys()
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

    # --- the carrier -------------------------------------------------------------------------
    async def _carrier(self) -> Carrier:
        await self.start()
        return self.carrier

    def _poll_replies(self) -> PollReplies:
        return self.replies

    def _keys_in_use(self, keys: LinkKeys) -> None:
        self.conn.expect_device_id = keys.device_id

    def _authenticated(self) -> bool:
        """Whether the session on the current link completed its handshake (the device
        there holds the lock's keys)."""
        client = self._client
        return client is not None and client.session.state is SessionState.OPEN

    async def _commissioning(self, pair: Callable[[], Awaitable[LinkKeys]]) -> LinkKeys:
        async with self.conn.operation():
            return await pair()

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

    @property
    def decisions(self) -> int:
        return self.replies.decisions

    @property
    def link_up(self) -> bool:
        return self.conn.link_up

    # --- link -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._in_service

    async def connect(self) -> None:
        await super().connect()
        self._in_service = True

    async def disconnect(self) -> None:
        self._in_service = False
        await super().disconnect()
        await self.conn.disconnect()

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
            and self._link_keys() is not None
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
        sent = self.replies.polling()
        reply = await client.poll()
        self.replies.note_log(reply, sent)
        while reply.request is not None:
            await self.replies.decide(client, reply.request)
            if not reply.flags & PollFlag.MORE_REQUESTS:
                break
            reply = await client.poll()
