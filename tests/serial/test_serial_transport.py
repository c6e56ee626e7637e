"""The asyncio transport over pyserial's descriptor, on a real pty: large writes, EOF."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest
import serial
from lockgate_sim.serial_pty import Pty

from drivers.serial.transport import FdTransport
from tests.loop_ticks import LoopTicks

BIG = 256 * 1024  # far beyond the pty's kernel buffer (about 12 KiB here)


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


@pytest.fixture
def pty_port() -> Iterator[tuple[Pty, int, serial.Serial]]:
    pty = Pty()
    master = pty.plug()
    port = serial.Serial(pty.path, 115200, timeout=0, exclusive=True)
    yield pty, master, port
    port.close()
    pty.unplug()
    with contextlib.suppress(OSError):
        os.close(master)


async def test_a_write_larger_than_the_kernel_buffer_never_blocks_the_loop(
    pty_port: tuple[Pty, int, serial.Serial],
) -> None:
    _, master, port = pty_port
    loop = asyncio.get_running_loop()
    protocol = Recorder()
    assert port.fd is not None
    transport = FdTransport(loop, port.fd, protocol, high_water=32 * 1024)
    payload = bytes(i % 251 for i in range(BIG))
    received = bytearray()
    done = asyncio.Event()
    os.set_blocking(master, False)

    def drain_master() -> None:  # the simulator's side, in the same event loop
        received.extend(os.read(master, 65536))
        if len(received) >= BIG:
            done.set()

    ticks = LoopTicks.start()
    started = loop.time()
    transport.write(payload)  # returns at once, whatever the kernel took
    assert loop.time() - started < 0.05
    assert transport.get_write_buffer_size() > 0
    assert protocol.paused == 1
    loop.add_reader(master, drain_master)
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        loop.remove_reader(master)
        await ticks.stop()
    assert bytes(received) == payload
    assert ticks.count > 10  # the loop kept running while the buffer drained
    assert transport.get_write_buffer_size() == 0
    assert protocol.resumed == 1
    transport.close()
    assert await asyncio.wait_for(protocol.lost, 1) is None


async def test_adapter_gone_ends_the_transport(pty_port: tuple[Pty, int, serial.Serial]) -> None:
    pty, master, port = pty_port
    protocol = Recorder()
    assert port.fd is not None
    FdTransport(asyncio.get_running_loop(), port.fd, protocol)
    pty.unplug()
    os.close(master)
    exc = await asyncio.wait_for(protocol.lost, 2)
    assert isinstance(exc, OSError)
