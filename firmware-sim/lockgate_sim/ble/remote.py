"""The BLE driver's backend factory for a simulator in another process.

With ``backend = "lockgate_sim.ble.remote:hci_backends"`` in a lock's options, the driver's
``adapter`` names a bumble HCI transport (``tcp-client:127.0.0.1:7001``) that a running
``python -m lockgate_sim.ble serve`` exposes. The gateway's process then runs a bumble host
over that transport, and the driver drives it through the real bleak API, as it drives BlueZ
in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport

from drivers.ble.adapter import BleakBackends
from lockgate_sim.ble.backend import backends_for
from lockgate_sim.ble.central import BumbleCentral


@contextlib.asynccontextmanager
async def central_over(spec: str, name: str = "lockgate-central") -> AsyncIterator[BumbleCentral]:
    transport = await open_transport(spec)
    try:
        device = Device.with_hci(
            name, Address.generate_static_address(), transport.source, transport.sink
        )
        central = BumbleCentral(device)
        await central.start()
        try:
            yield central
        finally:
            await central.close()
    finally:
        await transport.close()


@contextlib.asynccontextmanager
async def hci_backends(spec: str) -> AsyncIterator[BleakBackends]:
    async with central_over(spec, "lockgate-gateway") as central:
        backends = backends_for(central)
        yield BleakBackends(backends.client, backends.scanner)
