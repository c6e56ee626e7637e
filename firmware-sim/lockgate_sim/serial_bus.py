"""Simulated locks on an RS-485 bus behind a real pseudo-terminal.

:class:`SimSerialBus` owns a pty master, splits what the gateway writes into frames, hands each
frame addressed to one of its locks to that lock's :class:`~lockgate_sim.proto_lock.LockEngine`
and writes the answer back. With ``baud`` set it paces the wire: a frame is delivered when its
last byte would have arrived, a reply leaves when the wire is free and takes its byte time, on
one half-duplex line. :class:`LineFaults` break the line on demand; reboots and slow locks are
faults of the :class:`~lockgate_sim.lock.SimLock` itself.

Run on its own::

    PYTHONPATH=.:firmware-sim python -m lockgate_sim.serial_bus --locks 3 --state-dir /tmp/locks

prints the pty path and each simulated lock's address and pairing secret (a real lock prints
its secret on a label).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.lockproto.cobs import cobs_encode
from drivers.lockproto.crc import crc16
from drivers.lockproto.framing import CTL_FROM_LOCK, Deframer, Frame, encode_frame
from drivers.serial.transport import FdTransport
from lockgate_sim.lock import SimLock, SimLockSpec
from lockgate_sim.proto_lock import LockEngine
from lockgate_sim.serial_pty import Pty

BITS_PER_BYTE = 10
log = logging.getLogger(__name__)


@dataclass(slots=True)
class LineFaults:
    drop_replies: int = 0
    """Swallow the next N replies."""
    corrupt_replies: int = 0
    """Send the next N replies with a broken CRC."""
    garbage_replies: int = 0
    """Put random line noise (no delimiter) in front of the next N replies."""
    delay_replies: float = 0.0
    """Hold every reply this many seconds."""


@dataclass(slots=True)
class WireStats:
    bytes_from_gateway: int = 0
    bytes_to_gateway: int = 0
    frames_from_gateway: int = 0
    replies: int = 0
    dropped: int = 0
    corrupted: int = 0
    unaddressed: int = 0
    per_address: dict[int, int] = field(default_factory=dict)

    @property
    def wire_bytes(self) -> int:
        return self.bytes_from_gateway + self.bytes_to_gateway


class _MasterSide(asyncio.Protocol):
    def __init__(self, bus: SimSerialBus) -> None:
        self.bus = bus
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.bus._on_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class SimSerialBus:
    def __init__(
        self,
        engines: Mapping[int, LockEngine],
        *,
        baud: int | None = None,
        link: Path | None = None,
        faults: LineFaults | None = None,
        noise: random.Random | None = None,
    ) -> None:
        self.engines = dict(engines)
        self.baud = baud
        self.faults = faults or LineFaults()
        self.stats = WireStats()
        self.deframer = Deframer()
        self.pty = Pty(link)
        self._noise = noise or random.Random(0)
        self._transport: FdTransport | None = None
        self._side: _MasterSide | None = None
        self._queues: dict[int, asyncio.Queue[bytes]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._wire_free = 0.0
        self.listeners: list[Callable[[Frame], None]] = []
        """Called with every frame the gateway puts on the line: what any device on the bus
        hears (a test's attacker listens here and answers with :meth:`inject`)."""

    @property
    def path(self) -> str:
        return self.pty.path

    async def __aenter__(self) -> SimSerialBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        for address in self.engines:
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            self._queues[address] = queue
            self._workers.append(
                asyncio.create_task(self._serve(address, queue), name=f"sim-lock:{address}")
            )
        await self.plug()

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        if self._workers:
            await asyncio.wait(self._workers)
        self._workers.clear()
        await self.unplug()

    async def plug(self) -> None:
        master = self.pty.plug()
        self._side = _MasterSide(self)
        self.deframer = Deframer()
        self._transport = FdTransport(
            asyncio.get_running_loop(), master, self._side, on_close=lambda: os.close(master)
        )

    async def unplug(self) -> None:
        """Pull the adapter out: the gateway's port reads end of file, the link path vanishes."""
        transport, side = self._transport, self._side
        self._transport = self._side = None
        if transport is not None and side is not None:
            transport.abort()
            await side.lost
        self.pty.unplug()
        for queue in self._queues.values():
            while not queue.empty():
                queue.get_nowait()

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the line towards the gateway (line noise, or a forged frame)."""
        if self._transport is not None:
            self._transport.write(data)
            self.stats.bytes_to_gateway += len(data)

    # --- receiving --------------------------------------------------------------------------
    def _wire(self, n: int) -> float:
        """Occupy the half-duplex wire for ``n`` bytes; returns when they are through."""
        loop = asyncio.get_running_loop()
        if self.baud is None:
            return loop.time()
        start = max(loop.time(), self._wire_free)
        self._wire_free = start + n * BITS_PER_BYTE / self.baud
        return self._wire_free

    def _on_bytes(self, data: bytes) -> None:
        self.stats.bytes_from_gateway += len(data)
        done = self._wire(len(data))
        loop = asyncio.get_running_loop()
        for frame in self.deframer.feed(data):
            if self.baud is None:
                self._deliver(frame)
            else:
                loop.call_at(done, self._deliver, frame)

    def _deliver(self, frame: Frame) -> None:
        if frame.from_lock:
            return
        for listener in self.listeners:
            listener(frame)
        self.stats.frames_from_gateway += 1
        queue = self._queues.get(frame.address)
        if queue is None:
            self.stats.unaddressed += 1
            return
        self.stats.per_address[frame.address] = self.stats.per_address.get(frame.address, 0) + 1
        queue.put_nowait(frame.datagram)

    # --- answering --------------------------------------------------------------------------
    async def _serve(self, address: int, queue: asyncio.Queue[bytes]) -> None:
        while True:
            datagram = await queue.get()
            try:
                # The device at the address now: an installer may have swapped it (replace).
                reply = await self.engines[address].handle(datagram)
            except Exception:  # a simulator bug: log it, keep the lock on the bus
                log.exception("simulated lock at address %d failed on a datagram", address)
                continue
            if reply is not None:
                await self._reply(address, reply)

    async def _reply(self, address: int, datagram: bytes) -> None:
        faults = self.faults
        if faults.drop_replies:
            faults.drop_replies -= 1
            self.stats.dropped += 1
            return
        if faults.corrupt_replies:
            faults.corrupt_replies -= 1
            self.stats.corrupted += 1
            wire = _corrupt_frame(address, datagram)
        else:
            wire = encode_frame(Frame(address, True, datagram))
        if faults.garbage_replies:
            faults.garbage_replies -= 1
            n = self._noise.randrange(1, 40)
            wire = bytes(self._noise.randrange(1, 256) for _ in range(n)) + wire
        if faults.delay_replies:
            await asyncio.sleep(faults.delay_replies)
        loop = asyncio.get_running_loop()
        done = self._wire(len(wire))
        if done > loop.time():
            await asyncio.sleep(done - loop.time())
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(wire)
            self.stats.bytes_to_gateway += len(wire)
            self.stats.replies += 1


def _corrupt_frame(address: int, datagram: bytes) -> bytes:
    body = bytes((address, CTL_FROM_LOCK)) + datagram
    body += (crc16(body) ^ 0x0100).to_bytes(2, "little")
    return b"\x00" + cobs_encode(body) + b"\x00"


# --- a site: locks, engines, bus -----------------------------------------------------------
@dataclass(slots=True)
class SerialSite:
    """What :func:`serial_site` yields: the pty path and the simulated locks on it."""

    bus: SimSerialBus
    locks: dict[str, SimLock]
    engines: dict[str, LockEngine]
    addresses: dict[str, int]

    @property
    def path(self) -> str:
        return self.bus.path

    def pairing_secret(self, lock_id: str) -> str:
        return self.engines[lock_id].pairing_secret

    def replace_lock(
        self, lock_id: str, *, state_file: Path | None = None, **engine_options: Any
    ) -> LockEngine:
        """Another device at ``lock_id``'s bus address (its own flash, keys and log), as an
        installer swaps a broken lock; the old one is off the bus."""
        old = self.locks[lock_id]
        lock = SimLock(lock_id, old.spec, now=old._true_now, state_file=state_file)
        engine = LockEngine(lock, **engine_options)
        self.locks[lock_id], self.engines[lock_id] = lock, engine
        self.bus.engines[self.addresses[lock_id]] = engine
        return engine


def _utcnow() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def serial_site(
    count: int = 2,
    *,
    now: Callable[[], datetime] = _utcnow,
    state_dir: Path | None = None,
    spec: SimLockSpec | None = None,
    baud: int | None = None,
    link: Path | None = None,
    first_address: int = 1,
    lock_ids: list[str] | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[SerialSite]:
    """Simulated locks at addresses ``first_address``.. on one pty. ``baud`` paces the wire."""
    ids = lock_ids or [f"lock-{first_address + i}" for i in range(count)]
    locks: dict[str, SimLock] = {}
    engines: dict[str, LockEngine] = {}
    addresses: dict[str, int] = {}
    for i, lock_id in enumerate(ids):
        state = state_dir / f"{lock_id}.json" if state_dir is not None else None
        locks[lock_id] = SimLock(lock_id, spec, now=now, state_file=state)
        engines[lock_id] = LockEngine(locks[lock_id], **dict(engine_options or {}))
        addresses[lock_id] = first_address + i
    bus = SimSerialBus({addresses[i]: engines[i] for i in ids}, baud=baud, link=link)
    async with bus:
        yield SerialSite(bus, locks, engines, addresses)


# --- command line ---------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lockgate_sim.serial_bus", description=__doc__)
    p.add_argument("--locks", type=int, default=2, help="number of simulated locks")
    p.add_argument("--state-dir", type=Path, required=True, help="where the locks keep flash")
    p.add_argument("--first-address", type=int, default=1)
    p.add_argument("--baud", type=int, default=None, help="pace the wire to this baud rate")
    p.add_argument("--link", type=Path, default=None, help="stable symlink to the pty")
    p.add_argument("--slots", type=int, default=200)
    p.add_argument("--max-batch", type=int, default=50)
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    spec = SimLockSpec(slots=args.slots, max_batch=args.max_batch)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serial_site(
        args.locks, state_dir=args.state_dir, spec=spec, baud=args.baud, link=args.link,
        first_address=args.first_address,
    ) as site:
        print(f"pty {site.path}", flush=True)
        for lock_id, engine in site.engines.items():
            state = "commissioned" if engine.store.commissioned else "pairing"
            print(
                f"lock {lock_id} address {site.addresses[lock_id]} {state} "
                f"pairing-secret {engine.pairing_secret}",
                flush=True,
            )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
