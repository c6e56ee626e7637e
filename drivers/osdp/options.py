"""Typed options of the OSDP driver: one lock entry per reader.

.. code-block:: toml

    [[locks]]
    id = "front-door"
    acs_entrance_ids = ["entrance-front"]     # the entrance this reader guards
    [locks.driver]
    type = "osdp"
    port = "/dev/serial/by-id/usb-FTDI_USB-RS485_Cable_FT4ABCDE-if00-port0"
    baud = 9600
    address = 1
    key = { file = "/etc/lockgate/osdp/front-door.scbk" }   # or { credential = "front-door-scbk" }
    strike_output = 0
    strike_seconds = 5

Readers on one RS-485 bus name the same ``port`` and ``baud`` with different addresses; the
gateway runs one OSDP control panel per port for all of them. The key (SCBK, 16 bytes written
as 32 hex digits) is read from a file or a systemd credential, never from this file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.base import DriverOptions
from drivers.osdp.wiegand import CardNumberStyle, Wiegand37
from drivers.secrets import SecretRef

BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400)
ADDRESS_MAX = 126
"""0x7F is the broadcast address."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeypadOptions(_Frozen):
    min_length: int = Field(4, ge=1, le=16)
    max_length: int = Field(8, ge=1, le=16)
    """Digits beyond this refuse the entry (the rest up to ``#`` or ``*`` is ignored)."""
    inter_key_timeout: float = Field(5.0, gt=0, le=60)
    """Seconds between two keys after which a partial entry is dropped."""

    @model_validator(mode="after")
    def _range(self) -> KeypadOptions:
        if self.min_length > self.max_length:
            raise ValueError("min_length above max_length")
        return self


class FeedbackOptions(_Frozen):
    """What the reader shows: LEDs and buzzer, durations in seconds (sent in 100 ms units)."""

    led_number: int = Field(0, ge=0, le=255)
    allow_led_seconds: float = Field(3.0, ge=0.1, le=25.5)
    deny_led_seconds: float = Field(2.0, ge=0.1, le=25.5)
    buzzer: bool = True
    allow_beeps: int = Field(1, ge=0, le=10)
    deny_beeps: int = Field(3, ge=0, le=10)


class OsdpOptions(DriverOptions):
    type: Literal["osdp"] = "osdp"
    port: str = Field(min_length=1)
    """The RS-485 adapter; prefer a stable path (``/dev/serial/by-id/...``)."""
    baud: int = 9600
    """One of 9600 (the OSDP default), 19200, 38400, 57600, 115200, 230400; same for all
    readers on the port."""
    address: int = Field(ge=0, le=ADDRESS_MAX)
    key: SecretRef
    """The reader's secure-channel base key (SCBK): 32 hex digits in a file (mode 0600) or a
    systemd credential."""
    reader_number: int = Field(0, ge=0, le=255)
    """Which reader of the device (0 = the first) this entry is; for its LED and buzzer."""
    strike_output: int = Field(0, ge=0, le=255)
    """The device's output that drives the door strike (0 = the first)."""
    strike_seconds: float = Field(5.0, ge=0.1, le=6553.5)
    """How long the strike is released on an allow (sent as ``timer_count`` x 100 ms)."""
    card_number: CardNumberStyle = "number"
    """Which number of a card read is compared with the cloud's ``card_number``."""
    wiegand_37: Wiegand37 = "H10304"
    """How 37-bit reads are decoded (with or without a facility code)."""
    keypad: KeypadOptions = KeypadOptions()
    feedback: FeedbackOptions = FeedbackOptions()
    revive_min: float = Field(1.0, gt=0)
    revive_max: float = Field(5.0, gt=0)
    """Backoff for bringing back a reader libosdp has given up on (it would wait 300 s)."""

    @model_validator(mode="after")
    def _checks(self) -> OsdpOptions:
        if self.baud not in BAUD_RATES:
            raise ValueError(f"baud must be one of {', '.join(map(str, BAUD_RATES))}")
        if self.revive_min > self.revive_max:
            raise ValueError("revive_min above revive_max")
        return self


def parse_scbk(text: str) -> bytes:
    """An SCBK from its file: 32 hex digits (whitespace ignored). Never echoes the value."""
    digits = "".join(text.split())
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise ValueError("an SCBK is 32 hex digits") from None
    if len(key) != 16:
        raise ValueError(f"an SCBK is 16 bytes (32 hex digits), this one is {len(key)} bytes")
    return key
