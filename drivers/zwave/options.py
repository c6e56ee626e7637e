"""Typed options of the Z-Wave driver.

.. code-block:: toml

    [[locks]]
    id = "front-door"
    space_ids = ["space-lobby"]
    [locks.driver]
    type = "zwave"
    server = "ws://127.0.0.1:3000"   # the Z-Wave JS server (zwave-js-server or Z-Wave JS UI)
    node_id = 5                      # the lock's node id, as Z-Wave JS shows it after inclusion

Locks on one Z-Wave network name the same ``server``: they share one websocket connection.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from drivers.base import DriverOptions


class ZWaveOptions(DriverOptions):
    type: Literal["zwave"] = "zwave"
    server: str = Field(pattern=r"^wss?://\S+$")
    """The Z-Wave JS server's websocket URL."""
    node_id: int = Field(ge=2, le=4000)
    first_slot: int = Field(1, ge=1, le=65535)
    """The first User Code slot Lockgate may use; slots below it are left alone."""
    slot_count: int | None = Field(None, ge=1, le=65535)
    """How many slots from ``first_slot`` Lockgate may use; ``None``: all the lock has."""
    code_min_length: int | None = Field(None, ge=1, le=10)
    code_max_length: int | None = Field(None, ge=1, le=10)
    """Override the code length when the lock's own limits are narrower than 4-10 digits."""
    use_schedules: bool = True
    """Put time windows on the lock (Schedule Entry Lock) when it has year-day schedules."""
    command_timeout: float = Field(15.0, gt=0, le=120)
    """Bound on one command to the lock (a sleeping or out-of-range node answers never)."""
    connect_timeout: float = Field(15.0, gt=0, le=300)
    verify_interval: float = Field(300.0, gt=0)
    """Seconds between cheap drift checks (User Code checksum) of the slots Lockgate wrote."""
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min above reconnect_max")
        lo, hi = self.code_min_length, self.code_max_length
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("code_min_length above code_max_length")
        return self
