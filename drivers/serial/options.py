"""Typed options of the serial driver.

.. code-block:: toml

    [[locks]]
    id = "front-door"
    [locks.driver]
    type = "serial"
    port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0"
    baud = 115200
    address = 3
    poll_interval = 0.15

Locks on one RS-485 bus name the same ``port`` (and ``baud``) with different addresses. The
link keys come from commissioning (``SerialDriver.commission(pairing_secret)``), not config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.base import DriverOptions
from drivers.lockproto.framing import ADDRESS_MAX, ADDRESS_MIN


class SerialOptions(DriverOptions):
    type: Literal["serial"] = "serial"
    port: str = Field(min_length=1)
    """Device path; prefer a stable one (``/dev/serial/by-id/...``): it survives replugging."""
    baud: int = Field(115200, gt=0)
    address: int = Field(ge=ADDRESS_MIN, le=ADDRESS_MAX)
    """The lock's address on the bus (set on the lock at installation)."""
    poll_interval: float = Field(0.15, gt=0, le=60)
    """Seconds between polls of a lock (access requests, new events, keep-alive)."""
    idle_poll_interval: float = Field(0.5, gt=0, le=60)
    """Seconds between polls of a lock that asked for nothing in its last ``IDLE_AFTER_POLLS``
    polls: polling slows from ``poll_interval`` to this, and is back to ``poll_interval`` at
    the lock's next request, audit-log entry or write by the gateway. At most this long is
    added before a keypad entry on an idle lock is decided (never less than
    ``poll_interval``)."""
    rest_poll_interval: float = Field(2.0, gt=0, le=4)
    """Seconds between polls of a lock at rest (nothing happened for ``rest_after``): the
    longest a first request at a quiet door waits for its poll (never less than
    ``idle_poll_interval``; at most 4, the lock denies after 5 s without an answer)."""
    rest_after: float = Field(60.0, ge=0)
    """Seconds without activity (request, audit-log entry, flag change, write by the gateway)
    before a lock rests."""
    reply_timeout: float | None = Field(None, gt=0, le=30)
    """The lock's processing time budget; ``None`` takes what the lock announces."""
    attempts: int = Field(4, ge=1, le=10)
    """Transmissions of one request before the lock counts as not answering."""
    reconnect_min: float = Field(0.05, gt=0)
    reconnect_max: float = Field(10.0, gt=0)
    """Capped exponential backoff (with jitter) for reopening the port and reconnecting."""
