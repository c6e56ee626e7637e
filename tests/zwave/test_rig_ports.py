"""The rig picks the Z-Wave JS server's websocket port before the server binds it; when another
process took that port in between, the rig starts the server on another one."""

from __future__ import annotations

import socket
from pathlib import Path

from lockgate_sim.zwave_rig import ZWaveRig


async def test_a_taken_websocket_port_is_replaced(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        rig = ZWaveRig(tmp_path / "rig", locks=1)
        rig.ws_port = taken
        async with rig:  # returns once the lock node is ready through the server
            assert rig.ws_port != taken
            assert rig.url.endswith(f":{rig.ws_port}")
