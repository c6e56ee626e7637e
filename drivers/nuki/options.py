"""Typed options of the Nuki driver (``[locks.driver] type = "nuki"``).

The radio and connection options are the BLE driver's (:class:`drivers.ble.options.BleOptions`:
adapter, backend, timeouts, idle disconnect, reconnect backoff): a Nuki lock shares the adapter,
its scanner and its connection limit with the Lockgate BLE locks.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from drivers.ble.options import BleOptions
from drivers.secrets import SecretRef


class NukiOptions(BleOptions):
    type: Literal["nuki"] = "nuki"  # type: ignore[assignment]
    address: str | None = None
    """The lock's Bluetooth address (on its label, and in the Nuki app: Features &
    Configuration, Smart Lock info). Required."""
    app_id: int = Field(0x4C47_5731, ge=0, le=2**32 - 1)
    """The gateway's id at the lock (shown in the lock's log as the bridge's id)."""
    name: str = Field("Lockgate", min_length=1, max_length=32)
    """The authorization's name the Nuki app shows for the gateway."""
    reply_timeout: float | None = Field(None, gt=0, le=30)
    """How long one command waits for the lock's answer; ``None``: 5 s."""
    security_pin: SecretRef | None = None
    """The lock's security PIN from a file (mode 0600) or a systemd credential. Unset: the PIN
    given when commissioning, kept encrypted in the store."""
    max_codes: int = Field(200, ge=1, le=200)
    """Keypad codes the lock holds (a Nuki keypad keeps up to 200)."""
    idle_disconnect: float = Field(5.0, gt=0)
    """Drop the link this long after the last operation: a Nuki lock serves few centrals at
    once (the Nuki app, a bridge) and runs on batteries."""
    unlock_action: Literal["unlock", "unlatch"] = "unlock"
    """What a remote unlock does: turn the bolt back, or also pull the latch (door opens)."""

    @model_validator(mode="after")
    def _needs_address(self) -> Self:
        if self.address is None:
            raise ValueError("a Nuki lock needs its address")
        if self.device_id is not None:
            raise ValueError("a Nuki lock is found by its address, not a device_id")
        return self
