"""The serial lock driver: :class:`drivers.base.LockDriver` over the Lockgate lock protocol.

Composition, top-down: :class:`SerialDriver` → :class:`~drivers.lockproto.lockclient.LockClient`
(operations) → :class:`~drivers.lockproto.client.ClientSession` (handshake, sealing,
retransmission) → :class:`~drivers.serial.carrier.BusCarrier` (this lock's bus address) →
:class:`~drivers.serial.bus.SerialBus` (the shared port). Long-term link keys live in
``ctx.keystore`` under :func:`~drivers.lockproto.keys.keystore_name`.
"""

from __future__ import annotations

import logging
import os
import random as _random
from collections.abc import Callable, Sequence
from datetime import datetime

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
)
from drivers.errors import DriverConfigError, LockAuthError
from drivers.lockproto.client import ClientSession, LinkTiming, SessionState
from drivers.lockproto.crypto import Rng
from drivers.lockproto.keys import load_link_keys, require_link_keys, save_link_keys
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.pairing import commission, read_pairing_secret
from drivers.serial.bus import SERIAL_JITTER, SerialBus
from drivers.serial.buses import BusRegistry, default_bus_registry
from drivers.serial.carrier import BusCarrier
from drivers.serial.options import SerialOptions
from drivers.serial.poller import Poller

log = logging.getLogger(__name__)


class SerialDriver(LockDriver):
    type_name = "serial"
    options_model = SerialOptions

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        buses: BusRegistry | None = None,
        rng: Rng = os.urandom,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        if not isinstance(options, SerialOptions):
            raise DriverConfigError("serial driver needs SerialOptions", lock_id=lock_id)
        self.serial_options = options
        self._buses = buses
        self._rng = rng
        self._timing = LinkTiming(lock_reply=options.reply_timeout, attempts=options.attempts)
        self._bus: SerialBus | None = None
        self._carrier: BusCarrier | None = None
        self._client: LockClient | None = None
        self.poller = Poller(
            lock_id,
            ctx,
            self._ready,
            interval=options.poll_interval,
            policy=Backoff(
                options.reconnect_min, options.reconnect_max, jitter=SERIAL_JITTER, random=random
            ),
        )

    # --- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self._attach()
        self.poller.start()

    async def close(self) -> None:
        await self.poller.stop()
        await self.disconnect()
        bus, self._bus = self._bus, None
        if self._carrier is not None:
            self._carrier.close()
            self._carrier = None
        if bus is not None:
            registry = self._buses or default_bus_registry()
            await registry.release(bus)

    async def _attach(self) -> BusCarrier:
        if self._carrier is None:
            opts = self.serial_options
            registry = self._buses or default_bus_registry()
            bus = await registry.acquire(opts.port, opts.baud)
            try:
                bus.policy.initial, bus.policy.maximum = opts.reconnect_min, opts.reconnect_max
                self._carrier = BusCarrier(bus, opts.address)
            except ValueError as err:
                await registry.release(bus)
                raise DriverConfigError(str(err), lock_id=self.lock_id) from err
            self._bus = bus
        return self._carrier

    @property
    def bus(self) -> SerialBus | None:
        return self._bus

    @property
    def session(self) -> ClientSession | None:
        return self._client.session if self._client else None

    async def _ready(self) -> LockClient:
        carrier = await self._attach()
        keys = require_link_keys(self.ctx.keystore, self.lock_id)
        if self._client is None or self._client.session.keys != keys:
            session = ClientSession(
                carrier, keys, lock_id=self.lock_id, rng=self._rng, timing=self._timing
            )
            self._client = LockClient(session)
        return self._client

    # --- link -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return (
            self._client is not None
            and self._bus is not None
            and self._bus.is_open
            and self._client.session.state is SessionState.OPEN
        )

    async def connect(self) -> None:
        client = await self._ready()
        await client.session.open()
        await client.device_info(refresh=True)

    async def disconnect(self) -> None:
        if self._client is not None:
            self._client.session.drop()

    async def commission(self, pairing_secret: str) -> None:
        secret = read_pairing_secret(pairing_secret, lock_id=self.lock_id)
        carrier = await self._attach()
        try:
            keys = await commission(
                carrier, secret, lock_id=self.lock_id, rng=self._rng, timing=self._timing
            )
        except LockAuthError:
            if load_link_keys(self.ctx.keystore, self.lock_id) is None:
                raise
            await self.connect()  # already ours: commissioning again is a no-op
            return
        save_link_keys(self.ctx.keystore, self.lock_id, keys)
        self._client = None
        log.info("%s: commissioned (device %s)", self.lock_id, keys.device_id.hex())
        await self.connect()
        self.poller.wake()

    # --- operations -------------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        return await (await self._ready()).capabilities()

    async def list_credentials(self) -> list[StoredCredential]:
        return await (await self._ready()).list_credentials()

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        return await (await self._ready()).put_credentials(batch)

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        return await (await self._ready()).delete_credentials(credential_ids)

    async def lock(self) -> None:
        await (await self._ready()).lock()

    async def unlock(self, hold_seconds: float | None = None) -> None:
        await (await self._ready()).unlock(hold_seconds)

    async def status(self) -> LockStatus:
        return await (await self._ready()).status()

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        return await (await self._ready()).fetch_events(after_seq, limit)

    async def ack_events(self, up_to_seq: int) -> None:
        await (await self._ready()).ack_events(up_to_seq)

    async def set_time(self, t: datetime) -> None:
        await (await self._ready()).set_time(t)
