"""Simulated BLE locks on one virtual radio, reachable from other processes over HCI.

:class:`BleSimulator` is what ``python -m lockgate_sim.ble serve`` runs, and what a test can run
in-process: a :class:`VirtualRadio`, the locks on it (their flash in ``state_dir`` so that
commissioning survives a restart), and HCI endpoints. Each endpoint is a controller on the same
virtual link whose host lives elsewhere: the gateway (``tcp-client:...`` with
:func:`lockgate_sim.ble.remote.hci_backends`) or a phone. Bumble's own ``controllers`` app links
exactly two transports; this links any number of locks with any number of remote hosts.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from drivers.base import CredentialKind
from lockgate_sim.ble.hci_server import open_hci_server
from lockgate_sim.ble.peripheral import BleLock
from lockgate_sim.ble.radio import VirtualRadio
from lockgate_sim.lock import SimLock, SimLockSpec
from lockgate_sim.nuki.gatt import NukiBleLock
from lockgate_sim.nuki.model import NukiLockModel

BLE_LOCK_SPEC = SimLockSpec(
    slots=250,
    max_batch=100,
    enforces_time_windows=True,
    kinds=frozenset(CredentialKind),
    firmware="lockgate-sim-ble 1.0",
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    port: int

    @property
    def client_spec(self) -> str:
        return f"tcp-client:127.0.0.1:{self.port}"


class BleSimulator:
    def __init__(
        self, *, state_dir: Path | None = None, now: Callable[[], datetime] | None = None
    ) -> None:
        self.state_dir = state_dir
        self._now = now or (lambda: datetime.now(UTC))
        self.radio: VirtualRadio | None = None
        self.locks: dict[str, BleLock] = {}
        self.nukis: dict[str, NukiBleLock] = {}
        self.endpoints: list[Endpoint] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        self.radio = VirtualRadio()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def add_lock(self, lock_id: str, spec: SimLockSpec = BLE_LOCK_SPEC) -> BleLock:
        assert self.radio is not None, "use BleSimulator as an async context manager"
        state = None if self.state_dir is None else self.state_dir / f"{lock_id}.json"
        sim = SimLock(lock_id, spec, now=self._now, state_file=state)
        lock = await self._stack.enter_async_context(
            BleLock(sim, self.radio.device(f"lock-{lock_id}"))
        )
        self.locks[lock_id] = lock
        return lock

    async def add_nuki(self, name: str, *, security_pin: int = 4711) -> NukiBleLock:
        """A simulated Nuki lock on the same radio, in pairing mode (docs/nuki.md)."""
        assert self.radio is not None, "use BleSimulator as an async context manager"
        model = NukiLockModel(name=name, now=self._now, security_pin=security_pin)
        lock = await self._stack.enter_async_context(
            NukiBleLock(model, self.radio.device(f"nuki-{name}"))
        )
        lock.press_pairing_button()
        self.nukis[name] = lock
        return lock

    async def expose(self, name: str, port: int = 0) -> Endpoint:
        """An HCI endpoint on 127.0.0.1 (``port`` 0: the system picks one)."""
        assert self.radio is not None, "use BleSimulator as an async context manager"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # HCI packets are small
        sock.bind(("127.0.0.1", port))
        transport = await open_hci_server(sock)
        self._stack.push_async_callback(transport.close)
        self.radio.attach_transport(name, transport.source, transport.sink)
        endpoint = Endpoint(name, sock.getsockname()[1])
        self.endpoints.append(endpoint)
        return endpoint

    def describe(self) -> dict[str, Any]:
        return {
            "locks": {
                lock_id: {
                    "device_id": lock.device_id.hex(),
                    "address": lock.address,
                    "pairing_secret": lock.pairing_secret,
                }
                for lock_id, lock in self.locks.items()
            },
            "nuki": {
                name: {
                    "address": lock.address,
                    "security_pin": lock.model.security_pin,
                    "pairing_mode": lock.model.pairing_mode,
                }
                for name, lock in self.nukis.items()
            },
            "hci": {e.name: e.client_spec for e in self.endpoints},
        }
