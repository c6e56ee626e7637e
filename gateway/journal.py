"""Logging to the systemd journal through its native protocol, so fields are fields.

Under systemd the unit's stderr is a stream to journald (``JOURNAL_STREAM`` names it), where a
line can carry only a message and a priority. Sent as a datagram to journald's native socket
instead, a record keeps its fields: ``LOCK=front-door`` becomes something
``journalctl LOCK=front-door`` matches, and ``LOGGER``, ``CODE_FILE``/``CODE_LINE`` and
``PRIORITY`` come along.

The wire format (systemd's "Native Journal Protocol"): one datagram of ``NAME=value\\n`` lines;
a value holding a newline is sent as ``NAME\\n``, its length as 64-bit little-endian, the bytes,
and ``\\n``. A record that cannot be sent (no socket, too large for one datagram) is written to
stderr in the plain format instead, so nothing is lost silently.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")

PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (unknown levels count as INFO)."""
    return PRIORITY.get(levelno, 6)


def stderr_is_journal(env: dict[str, str] | None = None) -> bool:
    """True when stderr is the journal stream systemd handed us (``JOURNAL_STREAM=dev:ino``).

    Checked against stderr itself, as systemd's documentation asks: a child whose stderr was
    redirected elsewhere inherits the variable but must not log to the journal.
    """
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not dev.isdigit() or not ino.isdigit():
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def encode_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode fields in the native protocol. Names must be upper case, digits and ``_``."""
    out = bytearray()
    for name, value in fields:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


def field_name(name: str) -> str | None:
    """A journal field name from a record attribute (``lock`` -> ``LOCK``), or ``None``."""
    upper = name.upper()
    if not upper or upper[0] == "_" or upper[0].isdigit():
        return None
    if any(not (ch.isascii() and (ch.isalnum() or ch == "_")) for ch in upper):
        return None
    return upper[:64]


class JournalHandler(logging.Handler):
    """Sends each record to journald as one datagram with its fields.

    ``extra_fields`` names record attributes that become journal fields when present (the
    gateway passes ``lock`` so every line about a lock carries ``LOCK=<id>``).
    """

    def __init__(
        self,
        *,
        identifier: str = "lockgate",
        extra_fields: tuple[str, ...] = ("lock",),
        socket_path: Path = JOURNAL_SOCKET,
        fallback: logging.Handler | None = None,
    ) -> None:
        super().__init__()
        self.identifier = identifier
        self.extra_fields = extra_fields
        self.socket_path = socket_path
        self.fallback = fallback
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def fields(self, record: logging.LogRecord) -> list[tuple[str, str]]:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            message += "\n" + record.stack_info
        out = [
            ("MESSAGE", f"{record.name}: {message}"),
            ("PRIORITY", str(priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", record.funcName),
        ]
        for attr in self.extra_fields:
            value = getattr(record, attr, None)
            name = field_name(attr)
            if value is not None and value != "" and name is not None:
                out.append((name, str(value)))
        return out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            datagram = encode_fields(self.fields(record))
            self._sock.sendto(datagram, str(self.socket_path))
        except (OSError, ValueError):
            # No journal socket, a datagram too large, or journald busy: keep the line anyway.
            if self.fallback is not None:
                self.fallback.handle(record)
            else:
                self.handleError(record)

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            super().close()
