"""The serial port under libosdp's control panel, and a watcher of the replies on it.

libosdp reads and writes through a ``Channel`` object, from its own refresh thread. One
:class:`SerialChannel` serves every reader on a port: all of them get the same object, whose
``id`` is not 0, which is how libosdp 3.2.9 knows the readers share one line and takes turns
on it (multi-drop).

A port that fails (the USB adapter pulled out) is closed and reopened at most once a
``reopen_interval``; meanwhile reads return nothing and writes send nothing, so the readers
fall offline in libosdp's own way and come back when the port does.

:class:`ReplyWatch` reads the replies as they pass (whole frames, checked by their
CRC, but only their headers): which address answered
and whether it answered a secure-channel challenge (``osdp_CCRYPT``). libosdp tells Python
nothing when a reader's key is wrong (only a line on stderr); a reader that answers the
challenge and still never gets its secure channel up has a key that is not ours.
"""

from __future__ import annotations

import binascii
import logging
import threading
import time
from collections.abc import Callable

import osdp
import serial

log = logging.getLogger(__name__)

SOM = 0x53
REPLY_BIT = 0x80
CTRL_SCB = 0x08
CTRL_CRC = 0x04
REPLY_CCRYPT = 0x76
REPLY_RMAC_I = 0x78
MIN_PACKET = 7
MAX_PACKET = 1500


class ReplyWatch:
    """Per address: when it last answered anything, and when it last answered a challenge."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buf = bytearray()
        self.last_reply: dict[int, float] = {}
        self.last_ccrypt: dict[int, float] = {}
        self.last_rmac_i: dict[int, float] = {}
        """A reader sends ``osdp_RMAC_I`` only after checking the panel's cryptogram: the keys
        matched."""

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf.extend(data)
        while True:
            start = buf.find(SOM)
            if start < 0:
                buf.clear()
                return
            if start:
                del buf[:start]
            if len(buf) < 6:
                return
            length = buf[2] | buf[3] << 8
            if not MIN_PACKET <= length <= MAX_PACKET:
                del buf[:1]
                continue
            if len(buf) < length:
                return
            pkt = bytes(buf[:length])
            if not _intact(pkt):
                del buf[:1]  # a false start (a 0x53 inside data or noise): look further on
                continue
            self._packet(pkt)
            del buf[:length]

    def _packet(self, pkt: bytes) -> None:
        addr = pkt[1]
        if not addr & REPLY_BIT:
            return
        addr &= 0x7F
        now = self._clock()
        self.last_reply[addr] = now
        idx = 5
        if pkt[4] & CTRL_SCB:
            idx += pkt[5]
        code = pkt[idx] if idx < len(pkt) else None
        if code == REPLY_CCRYPT:
            self.last_ccrypt[addr] = now
        elif code == REPLY_RMAC_I:
            self.last_rmac_i[addr] = now


def _intact(pkt: bytes) -> bool:
    """OSDP's CRC-16/AUG-CCITT (little-endian) or its 8-bit checksum, as the control byte says."""
    if pkt[4] & CTRL_CRC:
        return binascii.crc_hqx(pkt[:-2], 0x1D0F) == pkt[-2] | pkt[-1] << 8
    return sum(pkt) & 0xFF == 0


class SerialChannel(osdp.Channel):  # type: ignore[misc]
    """A libosdp channel over pyserial, non-blocking, reopened after a failure."""

    def __init__(
        self,
        path: str,
        baud: int,
        watch: ReplyWatch,
        *,
        reopen_interval: float = 0.5,
        opener: Callable[[str, int], serial.Serial] | None = None,
    ) -> None:
        super().__init__()
        self.id = 1  # not 0: libosdp 3.2.9 treats equal non-zero ids as one shared line
        self.path = path
        self.baud = baud
        self.watch = watch
        self.reopen_interval = reopen_interval
        self._opener = opener or _open
        self._port: serial.Serial | None = None
        self._next_open = 0.0
        self._lock = threading.Lock()
        self._failing = False

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _ensure(self) -> serial.Serial | None:
        if self._port is not None:
            return self._port
        now = time.monotonic()
        if now < self._next_open:
            return None
        self._next_open = now + self.reopen_interval
        try:
            self._port = self._opener(self.path, self.baud)
        except (OSError, serial.SerialException) as err:
            if not self._failing:
                log.warning("OSDP port %s cannot be opened: %s", self.path, err)
            self._failing = True
            return None
        if self._failing:
            log.info("OSDP port %s open again", self.path)
        self._failing = False
        return self._port

    def _fail(self, err: Exception) -> None:
        log.warning("OSDP port %s failed (%s); reopening", self.path, err)
        self._failing = True
        self.close()

    def read(self, max_bytes: int) -> bytes:
        with self._lock:
            port = self._ensure()
            if port is None:
                return b""
            try:
                data = bytes(port.read(max_bytes))
            except (OSError, serial.SerialException) as err:
                self._fail(err)
                return b""
        if data:
            self.watch.feed(data)
        return data

    def write(self, buf: bytes) -> int:
        with self._lock:
            port = self._ensure()
            if port is None:
                return 0
            try:
                return int(port.write(bytes(buf)) or 0)
            except (OSError, serial.SerialException) as err:
                self._fail(err)
                return 0

    def flush(self) -> None:
        return None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException):
                log.debug("closing %s failed", self.path, exc_info=True)


def _open(path: str, baud: int) -> serial.Serial:
    return serial.Serial(path, baud, timeout=0, write_timeout=1.0)
