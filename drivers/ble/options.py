"""Typed options of the BLE driver (``[locks.driver] type = "ble"``)."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, model_validator

from drivers.base import DriverOptions

_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")


class BleOptions(DriverOptions):
    type: Literal["ble"] = "ble"
    address: str | None = None
    """The lock's Bluetooth address (a UUID on macOS). Either this or ``device_id``."""
    device_id: str | None = None
    """The lock's 8-byte device id, 16 hex digits, as printed on its label with the pairing
    secret. The gateway finds the lock by the first five bytes in its advertisement."""
    adapter: str = "default"
    """The adapter (BlueZ: ``hci0``); locks on one adapter share its scanner and its
    connection limit. With ``backend`` set, the backend factory interprets this name."""
    backend: str | None = None
    """``module:factory`` of a bleak backend pair for this adapter (a simulator); ``None``
    uses bleak's platform backend, untouched."""
    max_connections: int = Field(3, ge=1, le=20)
    """BLE connections the adapter runs at once (controllers and BlueZ cope with a few)."""
    scan_timeout: float = Field(10.0, gt=0, le=120)
    """How long to wait for the lock's advertisement before reporting it offline."""
    advert_fresh: float = Field(30.0, gt=0)
    """An advertisement younger than this is good enough to connect without waiting."""
    connect_timeout: float = Field(15.0, gt=0, le=120)
    gatt_timeout: float = Field(5.0, gt=0, le=60)
    """One GATT write or read; a silent link is dropped after this."""
    connect_attempts: int = Field(3, ge=1, le=10)
    """Connection attempts within one operation, with backoff between them."""
    op_attempts: int = Field(2, ge=1, le=5)
    """Tries of one operation when the link drops under it (operations are idempotent)."""
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)
    idle_disconnect: float = Field(30.0, gt=0)
    """Drop the link after this long without an operation (phones need the lock's slot)."""
    keepalive: float = Field(15.0, gt=0)
    """Poll a connected idle lock this often; capped at half the lock's own idle timeout."""
    attempts: int = Field(4, ge=1, le=10)
    """Transmissions of one request before the lock counts as not answering."""
    reply_timeout: float | None = Field(None, gt=0, le=30)
    """The lock's processing time budget; ``None`` takes what the lock announces."""
    segment_time: float = Field(0.015, gt=0, le=1)
    """Air time budget per segment (connection interval / packets per event)."""
    write_with_response: Literal["last", "all", "none"] = "last"
    """Which segments of a datagram are written with response: the last one gives flow
    control and an early error per datagram at one ATT round trip."""
    max_datagram: int = Field(4096, ge=256, le=65535)
    pair: bool = False
    """Bond with LE Secure Connections before use, for firmware that demands an encrypted
    link. The Lockgate session is end-to-end sealed either way (docs/ble.md)."""

    @model_validator(mode="after")
    def _identity(self) -> Self:
        if self.address is None and self.device_id is None:
            raise ValueError("a BLE lock needs its address or its device_id")
        if self.device_id is not None and not _HEX16.match(self.device_id):
            raise ValueError("device_id must be 16 hex digits")
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min above reconnect_max")
        return self

    @property
    def device_id_bytes(self) -> bytes | None:
        return None if self.device_id is None else bytes.fromhex(self.device_id)
