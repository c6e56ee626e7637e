"""A small non-blocking asyncio transport over a tty file descriptor.

Used for pyserial's descriptor in the driver (and for a pty master in the simulator). It
exists because pyserial-asyncio-fast's write path can spin or block the loop when the kernel
buffer fills (see the field notes): here ``write`` never blocks. What the kernel does not take
at once is buffered and written when the descriptor is writable; above ``high_water`` the
protocol is told to pause. End of file or an I/O error (adapter unplugged) ends the transport
with ``connection_lost``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

READ_CHUNK = 65536


class FdTransport(asyncio.Transport):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        protocol: asyncio.Protocol,
        *,
        on_close: Callable[[], None] = lambda: None,
        high_water: int = 64 * 1024,
        low_water: int = 16 * 1024,
    ) -> None:
        super().__init__()
        os.set_blocking(fd, False)
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._on_close = on_close
        self._buffer = bytearray()
        self._high, self._low = high_water, low_water
        self._closing = False
        self._closed = False
        self._protocol_paused = False
        self._reading = True
        self._writer_added = False
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)

    # --- reading ----------------------------------------------------------------------------
    def _start_reading(self) -> None:
        if not self._closing and self._reading:
            self._loop.add_reader(self._fd, self._read_ready)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._force_close(err)
            return
        if not data:
            self._force_close(ConnectionResetError("end of file on the serial port"))
            return
        self._protocol.data_received(data)

    def pause_reading(self) -> None:
        if self._reading and not self._closing:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    # --- writing ----------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            raise ConnectionError("write on a closed serial transport")
        if not data:
            return
        view = memoryview(data)
        if not self._buffer:
            try:
                n = os.write(self._fd, view)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as err:
                self._force_close(err)
                return
            view = view[n:]
            if not view:
                return
            self._loop.add_writer(self._fd, self._write_ready)
            self._writer_added = True
        self._buffer += view
        if not self._protocol_paused and len(self._buffer) > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            n = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._force_close(err)
            return
        del self._buffer[:n]
        if self._protocol_paused and len(self._buffer) <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if not self._buffer:
            self._remove_writer()
            if self._closing:
                self._loop.call_soon(self._finish, None)

    def _remove_writer(self) -> None:
        if self._writer_added:
            self._writer_added = False
            self._loop.remove_writer(self._fd)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    # --- closing ----------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; finish writing what is buffered, then close."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._buffer:
            self._loop.call_soon(self._finish, None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: Exception | None) -> None:
        if self._closed:
            return
        if exc is not None:
            log.debug("serial transport on fd %d lost: %s", self._fd, exc)
        self._closing = True
        self._buffer.clear()
        self._loop.remove_reader(self._fd)
        self._remove_writer()
        self._loop.call_soon(self._finish, exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._remove_writer()
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._on_close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "fd":
            return self._fd
        return default
