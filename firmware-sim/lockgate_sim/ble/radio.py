"""The virtual radio: bumble controllers on one shared link, and what crosses the air.

Every simulated BLE device (a lock, the gateway's adapter, a phone) is a bumble ``Device``
whose host talks HCI to its own :class:`SimController`; the controllers share a
:class:`CountingLink`. Bumble objects need a running event loop when built, so build a
:class:`VirtualRadio` inside the loop (an async test fixture), never at import time.

:class:`SimController` behaves like real silicon where bumble's virtual controller does not:
cancelling a pending LE connection ends it with an LE Connection Complete event carrying
``Unknown Connection Identifier``, so a connect that timed out returns instead of hanging.
With :attr:`SimController.cancel_loses_race` set, the connection completes just before a
cancel arrives, which the controller then refuses (``Command Disallowed``): on real silicon
that happens when the peer's advertisement is heard as the host gives up (on a loaded host, it
gives up late and the window is wide).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

ATT_CID = 0x0004
_ATT_REQUESTS = frozenset({0x02, 0x04, 0x06, 0x08, 0x0A, 0x0C, 0x0E, 0x10, 0x12, 0x16, 0x18, 0x20})
_WRITE_REQUEST = 0x12
_WRITE_COMMAND = 0x52
_NOTIFICATION = 0x1B
_INDICATION = 0x1D


class SimController(Controller):
    cancel_loses_race = False
    """The next LE Create Connection Cancel finds the connection made: the peer's
    advertisement was heard first (then this goes back to ``False``)."""

    def on_hci_le_create_connection_cancel_command(self, command: Any) -> Any:
        pending = self.pending_le_connection
        if pending is not None and self.cancel_loses_race:
            self.cancel_loses_race = False
            # its LE Connection Complete goes to the host before this command's Complete
            self.create_le_connection(pending.peer_address)
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # after the Command Complete this method's return value becomes, as a controller does
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


@dataclass(slots=True)
class AirStats:
    """ATT traffic per sending address, read off the air (whole L2CAP PDUs on the link)."""

    requests: dict[str, int] = field(default_factory=dict)
    """ATT requests (each waits for its response: one round trip)."""
    write_requests: dict[str, int] = field(default_factory=dict)
    write_commands: dict[str, int] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    indications: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        for counter in (
            self.requests,
            self.write_requests,
            self.write_commands,
            self.notifications,
            self.indications,
        ):
            counter.clear()

    def count(self, sender: str, pdu: bytes) -> None:
        if len(pdu) < 5 or int.from_bytes(pdu[2:4], "little") != ATT_CID:
            return
        opcode = pdu[4]
        if opcode in _ATT_REQUESTS:
            _inc(self.requests, sender)
        if opcode == _WRITE_REQUEST:
            _inc(self.write_requests, sender)
        elif opcode == _WRITE_COMMAND:
            _inc(self.write_commands, sender)
        elif opcode == _NOTIFICATION:
            _inc(self.notifications, sender)
        elif opcode == _INDICATION:
            _inc(self.indications, sender)


def _inc(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


class CountingLink(LocalLink):
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.air = AirStats()

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport == PhysicalTransport.LE:
            self.air.count(str(sender_controller.random_address), bytes(data))
        super().send_acl_data(sender_controller, destination_address, transport, data)


class VirtualRadio:
    """A shared link and a factory of devices on it, with distinct static random addresses."""

    def __init__(self) -> None:
        self.link = CountingLink()
        self._next = 0
        self.devices: dict[str, Device] = {}
        self.controllers: dict[str, SimController] = {}

    @property
    def air(self) -> AirStats:
        return self.link.air

    def next_address(self) -> hci.Address:
        self._next += 1
        n = self._next
        # static random address: the two top bits of the most significant byte set
        return hci.Address(f"C0:00:00:00:{n >> 8:02X}:{n & 0xFF:02X}")

    def device(self, name: str, address: hci.Address | None = None) -> Device:
        """A new powered-off device on this radio (call ``await device.power_on()``)."""
        address = address or self.next_address()
        controller = SimController(name, link=self.link, public_address=address)
        host = Host(controller, AsyncPipeSink(controller))
        device = Device(name=name, address=address, host=host)
        self.devices[name] = device
        self.controllers[name] = controller
        return device

    def attach_transport(self, name: str, source: Any, sink: Any) -> Controller:
        """A controller on this link for a host in another process (HCI over a transport)."""
        controller = SimController(name, host_source=source, host_sink=sink, link=self.link)
        return controller
