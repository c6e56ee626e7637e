"""The simulator's HCI endpoint when its host restarts: the new host's connection keeps the
endpoint even when the old connection's end reaches the event loop after the new one began
(what made tests/e2e/test_nuki.py's restart hang when the gateway stopped quickly)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from lockgate_sim.ble.hci_server import open_hci_server

RESET = bytes([0x01, 0x03, 0x0C, 0x00])  # HCI command packet: Reset, no parameters
EVENT = bytes([0x04, 0x0E, 0x04, 0x01, 0x03, 0x0C, 0x00])  # its Command Complete


class _Controller:
    """Answers each HCI packet the endpoint parsed with a Command Complete."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()
        self.sink: Any = None

    def on_packet(self, packet: bytes) -> None:
        self.got.put_nowait(bytes(packet))
        self.sink.on_packet(EVENT)


async def _endpoint() -> tuple[Any, int, _Controller]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    transport = await open_hci_server(sock)
    controller = _Controller()
    controller.sink = transport.sink
    transport.source.set_packet_sink(controller)
    return transport, sock.getsockname()[1], controller


async def test_a_new_host_keeps_the_endpoint_when_the_old_ones_end_arrives_late() -> None:
    transport, port, controller = await _endpoint()
    try:
        async with asyncio.timeout(5):
            _, old = await asyncio.open_connection("127.0.0.1", port)
            old.write(RESET)
            assert await controller.got.get() == RESET
            # the old host goes and the new one connects in the same turn of the loop: the
            # server sees the new connection before the old one's end
            old.close()
            reader, new = await asyncio.open_connection("127.0.0.1", port)
            await old.wait_closed()
            new.write(RESET)  # behind the old connection's end, on the server's side
            assert await controller.got.get() == RESET
            assert await reader.readexactly(len(EVENT)) == EVENT
            new.close()
            await new.wait_closed()
    finally:
        await transport.close()


async def test_a_half_packet_of_the_old_host_is_not_prefixed_to_the_new_ones() -> None:
    transport, port, controller = await _endpoint()
    try:
        async with asyncio.timeout(5):
            _, old = await asyncio.open_connection("127.0.0.1", port)
            old.write(RESET[:2])  # cut off mid-packet
            await old.drain()
            old.close()
            await old.wait_closed()
            reader, new = await asyncio.open_connection("127.0.0.1", port)
            new.write(RESET)
            assert await controller.got.get() == RESET
            assert await reader.readexactly(len(EVENT)) == EVENT
            new.close()
            await new.wait_closed()
    finally:
        await transport.close()
