"""One serial port and the locks on it (an RS-485 bus, or a UART with one lock).

The gateway is the bus master: it speaks, one lock answers. :class:`SerialBus` owns the port,
hands each received frame to the :class:`Mailbox` of its bus address, and holds
:attr:`exchange_lock` so that one request/reply exchange runs at a time on the wire (several
drivers share one bus). A supervisor task opens the port and reopens it with
:class:`~drivers.backoff.Backoff` delays when it disappears (USB adapter unplugged); every
reopening bumps :attr:`generation`, which ends the sessions that ran over the old one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from drivers.backoff import Backoff
from drivers.errors import LockOfflineError
from drivers.lockproto.framing import Frame
from drivers.serial.frames import FrameProtocol
from drivers.serial.transport import FdTransport

log = logging.getLogger(__name__)

QUEUE_DEPTH = 16
FIRST_OPEN_WAIT = 2.0
SERIAL_JITTER = 0.25
"""Backoff jitter on a bus: delays are cut by up to a quarter, so locks and buses spread out."""


class Port(Protocol):
    """The part of :class:`serial.Serial` the bus uses."""

    fd: int | None

    def close(self) -> None: ...


def open_pyserial(path: str, baud: int) -> Port:
    port = serial.Serial(path, baud, timeout=0, write_timeout=0, exclusive=True)
    if port.fd is None:
        raise OSError(f"pyserial opened {path} without a file descriptor")
    return port


class PortState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(slots=True)
class BusStats:
    opens: int = 0
    losses: int = 0
    echoes: int = 0
    unaddressed: int = 0
    overflows: int = 0


Item = bytes | int
"""A datagram, or the generation number of a port that was just lost."""


class Mailbox:
    """What came from one bus address, for the one driver that waits on it (at most
    :data:`QUEUE_DEPTH` items: the oldest goes first, counted in ``stats.overflows``).

    :meth:`get` waits with a deadline on the loop's clock: one future and one timer per
    wait, no ``asyncio.timeout`` context and no queue of getters (a resting gateway waits on
    a mailbox for every poll of every lock). An item stays in the mailbox until the waiter
    takes it, so nothing is lost when a wait ends by timeout or cancellation.
    """

    __slots__ = ("_items", "_stats", "_waiter")

    def __init__(self, stats: BusStats) -> None:
        self._items: deque[Item] = deque()
        self._stats = stats
        self._waiter: asyncio.Future[bool] | None = None
        """Resolved ``True`` by :meth:`put`, ``False`` by the deadline's timer (a result, not
        an exception: a wait cancelled just after its timer fired leaves nothing unread)."""

    def put(self, item: Item) -> None:
        if len(self._items) >= QUEUE_DEPTH:
            self._items.popleft()
            self._stats.overflows += 1
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def get(self, deadline: float) -> Item:
        """The oldest item; ``TimeoutError`` if none came by ``deadline`` (loop time). One
        reader at a time: the driver waits only inside its exchange on the bus."""
        while not self._items:
            loop = asyncio.get_running_loop()
            if loop.time() >= deadline:
                raise TimeoutError
            if self._waiter is not None:
                raise RuntimeError("a second reader waits on one bus address")
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                came = await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not came and not self._items:
                raise TimeoutError
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class SerialBus:
    def __init__(
        self,
        path: str,
        baud: int,
        *,
        opener: Callable[[str, int], Port] = open_pyserial,
        policy: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self.baud = baud
        self.exchange_lock = asyncio.Lock()
        self.generation = 0
        self.stats = BusStats()
        self.last_error = ""
        self.policy = policy or Backoff(0.05, 10.0, jitter=SERIAL_JITTER)
        self._opener = opener
        self._sleep = sleep
        self._state = PortState.STOPPED
        self._changed = asyncio.Event()
        self._mailboxes: dict[int, Mailbox] = {}
        self._protocol: FrameProtocol | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._set_state(PortState.CONNECTING)
            self._task = asyncio.create_task(self._supervise(), name=f"serial-bus:{self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._close_port()
        self._set_state(PortState.STOPPED)

    @property
    def state(self) -> PortState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state is PortState.OPEN

    @property
    def protocol(self) -> FrameProtocol | None:
        return self._protocol

    async def wait_state(self, state: PortState) -> None:
        """Return once the port is in ``state`` (use with a timeout)."""
        while self._state is not state:
            self._changed.clear()
            await self._changed.wait()

    def _set_state(self, state: PortState) -> None:
        self._state = state
        self._changed.set()

    async def _supervise(self) -> None:
        failing = False
        while True:
            try:
                protocol = self._open_port()
            except (OSError, serial.SerialException, ValueError) as err:
                self.last_error = str(err) or type(err).__name__
                self._set_state(PortState.DOWN)
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "serial port %s cannot be opened: %s", self.path, self.last_error)
                failing = True
                await self._sleep(self.policy.next_delay())
                continue
            await protocol.made.wait()
            if not protocol.is_open:  # gone again at once
                self._protocol = None
                await self._sleep(self.policy.next_delay())
                continue
            failing = False
            self.policy.reset()
            self.generation += 1
            self.stats.opens += 1
            self._set_state(PortState.OPEN)
            log.info("serial port %s open at %d baud", self.path, self.baud)
            exc = await asyncio.shield(protocol.closed)
            self._protocol = None
            self.stats.losses += 1
            self.last_error = f"port lost: {exc}" if exc else "port lost"
            self._set_state(PortState.DOWN)
            log.warning("serial port %s lost (%s); reopening", self.path, exc)
            for mailbox in self._mailboxes.values():
                mailbox.put(self.generation)
            await self._sleep(self.policy.next_delay())

    def _open_port(self) -> FrameProtocol:
        port = self._opener(self.path, self.baud)
        assert port.fd is not None
        protocol = FrameProtocol(self._on_frame)
        FdTransport(asyncio.get_running_loop(), port.fd, protocol, on_close=port.close)
        self._protocol = protocol
        return protocol

    async def _close_port(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort()
            await protocol.closed

    # --- frames -----------------------------------------------------------------------------
    def register(self, address: int) -> Mailbox:
        if address in self._mailboxes:
            raise ValueError(f"bus address {address} on {self.path} is already in use")
        mailbox = self._mailboxes[address] = Mailbox(self.stats)
        return mailbox

    def unregister(self, address: int) -> None:
        self._mailboxes.pop(address, None)

    def _on_frame(self, frame: Frame) -> None:
        if not frame.from_lock:
            self.stats.echoes += 1  # our own frame, echoed by a half-duplex adapter
            return
        mailbox = self._mailboxes.get(frame.address)
        if mailbox is None:
            self.stats.unaddressed += 1
            return
        mailbox.put(frame.datagram)

    async def ensure_open(self) -> None:
        if self._state is PortState.CONNECTING:
            try:
                async with asyncio.timeout(FIRST_OPEN_WAIT):
                    while self._state is PortState.CONNECTING:
                        self._changed.clear()
                        await self._changed.wait()
            except TimeoutError:
                pass
        if self._state is not PortState.OPEN:
            raise LockOfflineError(
                f"serial port {self.path} unavailable ({self.last_error or self._state.value})"
            )

    async def send(self, address: int, datagram: bytes) -> None:
        if self._state is not PortState.OPEN:
            await self.ensure_open()
        protocol = self._protocol
        if protocol is None:
            raise LockOfflineError(f"serial port {self.path} unavailable")
        try:
            await protocol.send_frame(Frame(address, False, datagram))
        except ConnectionError as err:
            raise LockOfflineError(f"serial port {self.path} lost: {err}") from err
