"""The serial lock driver: the Lockgate lock protocol on an RS-485 / UART bus.

A :class:`~drivers.lockproto.driver.ProtocolDriver` (session, operations, commissioning) whose
carrier is a :class:`~drivers.serial.carrier.BusCarrier` (this lock's bus address) on a
:class:`~drivers.serial.bus.SerialBus` (the shared port), plus a :class:`Poller` that asks the
lock now and then whether it waits for an access decision or holds new audit-log entries.
"""

from __future__ import annotations

import logging
import os
import random as _random
from collections.abc import Callable

from drivers.backoff import Backoff
from drivers.base import DriverContext, DriverOptions
from drivers.errors import DriverConfigError
from drivers.lockproto.carrier import Carrier
from drivers.lockproto.client import LinkTiming
from drivers.lockproto.crypto import Rng
from drivers.lockproto.driver import ProtocolDriver
from drivers.lockproto.requests import PollReplies
from drivers.serial.bus import SERIAL_JITTER, SerialBus
from drivers.serial.buses import BusRegistry, default_bus_registry
from drivers.serial.carrier import BusCarrier
from drivers.serial.options import SerialOptions
from drivers.serial.poller import Poller

log = logging.getLogger(__name__)


class SerialDriver(ProtocolDriver):
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
        if not isinstance(options, SerialOptions):
            raise DriverConfigError("serial driver needs SerialOptions", lock_id=lock_id)
        timing = LinkTiming(lock_reply=options.reply_timeout, attempts=options.attempts)
        super().__init__(lock_id, options, ctx, timing=timing, rng=rng)
        self.serial_options = options
        self._buses = buses
        self._bus: SerialBus | None = None
        self._bus_carrier: BusCarrier | None = None
        self.poller = Poller(
            lock_id,
            ctx,
            self._ready,
            interval=options.poll_interval,
            idle_interval=options.idle_poll_interval,
            rest_interval=options.rest_poll_interval,
            rest_after=options.rest_after,
            policy=Backoff(
                options.reconnect_min, options.reconnect_max, jitter=SERIAL_JITTER, random=random
            ),
        )

    # --- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self._carrier()
        self.poller.start()

    async def close(self) -> None:
        await self.poller.stop()
        await self.disconnect()
        bus, self._bus = self._bus, None
        if self._bus_carrier is not None:
            self._bus_carrier.close()
            self._bus_carrier = None
        if bus is not None:
            registry = self._buses or default_bus_registry()
            await registry.release(bus)

    # --- the carrier ------------------------------------------------------------------------
    async def _carrier(self) -> Carrier:
        if self._bus_carrier is None:
            opts = self.serial_options
            registry = self._buses or default_bus_registry()
            bus = await registry.acquire(opts.port, opts.baud)
            try:
                bus.policy.initial, bus.policy.maximum = opts.reconnect_min, opts.reconnect_max
                self._bus_carrier = BusCarrier(bus, opts.address)
            except ValueError as err:
                await registry.release(bus)
                raise DriverConfigError(str(err), lock_id=self.lock_id) from err
            self._bus = bus
        return self._bus_carrier

    def _commissioned(self) -> None:
        self.poller.wake()

    def _poll_replies(self) -> PollReplies:
        return self.poller.replies

    def _changing(self) -> None:
        self.poller.activity()  # a person is likely about: poll at full rate

    @property
    def bus(self) -> SerialBus | None:
        return self._bus

    @property
    def connected(self) -> bool:
        return self._bus is not None and self._bus.is_open and super().connected
