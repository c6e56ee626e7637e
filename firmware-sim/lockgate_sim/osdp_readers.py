"""OSDP readers behind a real pseudo-terminal: libosdp's own ``PeripheralDevice``, multi-drop.

:class:`OsdpBus` owns a pty (the driver opens its slave with pyserial, as it would a USB RS-485
adapter) and puts several :class:`SimReader` on it. RS-485 is one shared line: every reader
hears every byte the control panel sends and answers only to its address, so the bus hands each
reader a copy of what the panel wrote and puts each reader's answer on the line. A reader can
be unplugged from the line and plugged back.

A reader is a libosdp ``PeripheralDevice`` with a card reader, a keypad, an LED, a buzzer and an
output (the strike). It records every command it receives with the time it arrived; a test
awaits the command it expects (:meth:`SimReader.wait_command`) instead of sleeping. A reader
made without a key is in install mode (default key, SCBK-D) until a control panel gives it one.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import osdp

from drivers.osdp.wiegand import WiegandFormat, encode_wiegand, to_bytes
from lockgate_sim.serial_pty import Pty

OUTPUTS = 4
"""Outputs a simulated reader has (a command for another one is refused, as a real one would)."""


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    at: float
    """``time.monotonic()`` when the reader's command callback ran."""
    command: dict[str, Any]


class _LineChannel(osdp.Channel):  # type: ignore[misc]
    """One reader's tap on the shared line."""

    def __init__(self, bus: OsdpBus, reader: SimReader) -> None:
        super().__init__()
        self.bus = bus
        self.reader = reader
        self.inbox = bytearray()

    def read(self, max_bytes: int) -> bytes:
        self.bus.pump()
        with self.bus.lock:
            data = bytes(self.inbox[:max_bytes])
            del self.inbox[:max_bytes]
        return data

    def write(self, buf: bytes) -> int:
        if not self.reader.plugged:
            return len(buf)  # into the void
        return self.bus.transmit(bytes(buf))

    def flush(self) -> None:
        return None


class SimReader:
    """One reader on the bus (libosdp ``PeripheralDevice``)."""

    def __init__(self, bus: OsdpBus, address: int, key: bytes | None) -> None:
        self.bus = bus
        self.address = address
        self.key = key
        """Its SCBK; ``None``: install mode (default key) until provisioned."""
        self.plugged = True
        self.commands: list[ReceivedCommand] = []
        self._cond = threading.Condition()
        self.channel = _LineChannel(bus, self)
        caps = osdp.PDCapabilities(
            [
                (osdp.Capability.OutputControl, 1, OUTPUTS),
                (osdp.Capability.LEDControl, 1, 1),
                (osdp.Capability.AudibleControl, 1, 1),
                (osdp.Capability.CardDataFormat, 1, 1),
                (osdp.Capability.ContactStatusMonitoring, 1, 1),
                (osdp.Capability.CommunicationSecurity, 1, 1),
            ]
        )
        info = osdp.PDInfo(address, self.channel, scbk=key, name=f"sim-reader-{address}")
        self.pd = osdp.PeripheralDevice(
            info, caps, log_level=osdp.LogLevel.Emergency, command_handler=self._on_command
        )
        self._running = False

    def start(self) -> None:
        self.pd.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.pd.teardown()

    # --- what the panel sends ----------------------------------------------------------------
    def _on_command(self, command: dict[str, Any]) -> tuple[int, None]:
        if command.get("command") == osdp.Command.Keyset and command.get("type") == 1:
            self.key = bytes(command["data"])  # a real reader keeps it in flash
        with self._cond:
            self.commands.append(ReceivedCommand(time.monotonic(), dict(command)))
            self._cond.notify_all()
        return 0, None

    def outputs(self) -> list[ReceivedCommand]:
        return [c for c in self.commands if c.command.get("command") == osdp.Command.Output]

    async def wait_command(
        self, predicate: Callable[[dict[str, Any]], bool], *, after: int = 0, within: float = 5.0
    ) -> ReceivedCommand:
        """The first command from index ``after`` on that satisfies ``predicate``."""

        def wait() -> ReceivedCommand | None:
            deadline = time.monotonic() + within
            with self._cond:
                while True:
                    for c in self.commands[after:]:
                        if predicate(c.command):
                            return c
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)

        found = await asyncio.to_thread(wait)
        if found is None:
            raise TimeoutError(f"reader {self.address}: no such command within {within} s")
        return found

    # --- what a person does at the reader ----------------------------------------------------
    def present_bits(self, bits: str) -> None:
        self.pd.submit_event(
            {
                "event": osdp.Event.CardRead,
                "reader_no": 0,
                "format": osdp.CardFormat.Wiegand,
                "direction": 0,
                "length": len(bits),
                "data": to_bytes(bits),
            }
        )

    def present_card(self, fmt: WiegandFormat, number: int, facility: int | None = None) -> str:
        """Present a card; returns its bits."""
        bits = encode_wiegand(fmt, number, facility)
        self.present_bits(bits)
        return bits

    def press(self, keys: bytes) -> None:
        """One keypad report (a key, or several at once)."""
        self.pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": keys})

    def report_local(self, *, tamper: bool, power_failure: bool) -> None:
        self.pd.submit_event(
            {
                "event": osdp.Event.Status,
                "type": osdp.StatusReportType.Local,
                "report": bytes([int(tamper), int(power_failure)]),
            }
        )

    @property
    def secure(self) -> bool:
        return bool(self.pd.is_sc_active())


@dataclass
class OsdpBus:
    """A pty with readers on it; use as a context manager (``with OsdpBus() as bus``)."""

    pty: Pty = field(default_factory=Pty)
    readers: dict[int, SimReader] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    bytes_from_panel: int = 0

    def __enter__(self) -> OsdpBus:
        master = self.pty.plug()
        os.set_blocking(master, False)
        return self

    def __exit__(self, *exc: object) -> None:
        for reader in self.readers.values():
            reader.stop()
        master = self.pty.master
        self.pty.unplug()
        if master is not None:
            os.close(master)

    @property
    def path(self) -> str:
        return self.pty.path

    def add(self, address: int, key: bytes | None) -> SimReader:
        reader = SimReader(self, address, key)
        self.readers[address] = reader
        reader.start()
        return reader

    def pump(self) -> None:
        """Move what the panel wrote into every plugged reader's inbox (the shared line)."""
        with self.lock:
            master = self.pty.master
            if master is None:
                return
            try:
                data = os.read(master, 65536)
            except (BlockingIOError, OSError):
                return
            self.bytes_from_panel += len(data)
            for reader in self.readers.values():
                if reader.plugged:
                    reader.channel.inbox.extend(data)

    def transmit(self, data: bytes) -> int:
        with self.lock:
            master = self.pty.master
            if master is None:
                return len(data)
            try:
                return os.write(master, data)
            except BlockingIOError:
                return 0
            except OSError:
                return len(data)  # the panel's side is gone

    def pull_adapter(self) -> None:
        """The USB RS-485 adapter pulled out: the gateway's port goes away (and its link)."""
        with self.lock:
            master = self.pty.master
            self.pty.unplug()
            if master is not None:
                os.close(master)

    def plug_adapter(self) -> None:
        """Put back: a new pty behind the same link, as a replugged adapter."""
        with self.lock:
            master = self.pty.plug()
            os.set_blocking(master, False)

    def unplug(self, address: int) -> None:
        reader = self.readers[address]
        reader.plugged = False
        with self.lock:
            reader.channel.inbox.clear()

    def plug(self, address: int) -> None:
        self.readers[address].plugged = True
