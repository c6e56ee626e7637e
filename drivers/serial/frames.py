"""The framing layer as an :class:`asyncio.Protocol`: bytes in, :class:`Frame` callbacks out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.lockproto.framing import MAX_DATAGRAM, Deframer, Frame, encode_frame


class FrameProtocol(asyncio.Protocol):
    def __init__(
        self, on_frame: Callable[[Frame], None], *, max_datagram: int = MAX_DATAGRAM
    ) -> None:
        self.deframer = Deframer(max_datagram)
        self.bytes_out = 0
        self.frames_out = 0
        self._on_frame = on_frame
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.made = asyncio.Event()
        """Set once the transport called :meth:`connection_made`."""
        self.closed: asyncio.Future[Exception | None] = (
            asyncio.get_running_loop().create_future()
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.made.set()

    def data_received(self, data: bytes) -> None:
        for frame in self.deframer.feed(data):
            self._on_frame(frame)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._writable.set()
        self.made.set()
        if not self.closed.done():
            self.closed.set_result(exc)

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def write(self, data: bytes) -> None:
        """Write raw bytes; waits while the transport's buffer is above its high mark."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("serial port is closed")
        self._transport.write(data)
        self.bytes_out += len(data)
        if self._writable.is_set():
            return
        await self._writable.wait()
        if self._transport is None:
            raise ConnectionError("serial port closed while writing")

    async def send_frame(self, frame: Frame) -> None:
        await self.write(encode_frame(frame))
        self.frames_out += 1

    def abort(self) -> None:
        """Drop the port now (buffered bytes are lost)."""
        if self._transport is not None:
            self._transport.abort()
