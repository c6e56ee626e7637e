"""The service manager's notification protocol (``sd_notify``), without libsystemd.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: a unix datagram socket, a path or an
abstract name written ``@name``. Each datagram is newline-separated ``KEY=VALUE`` fields
(``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``). ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``, when set, naming this process) says that the manager expects ``WATCHDOG=1`` at
least that often.

This module is the wire only; what to send and when is :mod:`gateway.supervise`'s business.
Sending never raises and never blocks: the notifier logs a failure and goes on, because a
daemon must not stop serving locks because its service manager did not listen.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SdNotifier:
    """Sends notifications to one socket, or does nothing when there is none."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._target: str | None = _socket_address(address) if address else None
        self._failing = False
        if address and self._target is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket; notifications are off", address)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SdNotifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._target is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one datagram; False if not sent."""
        if self._target is None:
            return False
        payload = "\n".join(_one_line(f) for f in fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(payload, self._target)
        except OSError as err:
            # First failure in a row at WARNING, the repeats at DEBUG.
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "could not notify the service manager at %s: %s",
                self.address,
                err.strerror or err,
            )
            self._failing = True
            return False
        if self._failing:
            log.info("notifying the service manager at %s again", self.address)
            self._failing = False
        return True


def watchdog_timeout(
    environ: Mapping[str, str] = os.environ, pid: int | None = None
) -> float | None:
    """The watchdog timeout in seconds the manager expects from this process, or ``None``.

    Like ``sd_watchdog_enabled()``: ``$WATCHDOG_USEC`` must be a positive integer, and
    ``$WATCHDOG_PID``, when set, must name this process (otherwise it was meant for a parent).
    """
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog off", usec)
        return None
    if value <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            meant_for = int(owner)
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a number; watchdog off", owner)
            return None
        if meant_for != (os.getpid() if pid is None else pid):
            return None
    return value / 1_000_000


def _socket_address(address: str) -> str | None:
    if address.startswith("@") and len(address) > 1:
        return "\0" + address[1:]  # the abstract namespace
    if address.startswith("/"):
        return address
    return None  # vsock: and other transports of newer managers are not supported


def _one_line(field: str) -> str:
    """A field's value must not carry a newline: it would start a new field."""
    return field.replace("\r", " ").replace("\n", " ")
