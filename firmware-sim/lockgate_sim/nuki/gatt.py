"""The simulated Nuki lock as a GATT server on a bumble device of the virtual radio.

Services and characteristics as in the Smart Lock API V2.1 §2: the pairing service
``a92ee100`` (``a92ee101``, plain) and the keyturner service ``a92ee200`` (``a92ee201``
general, ``a92ee202`` user-specific, sealed), each "write, indicate". It advertises as Nuki
locks do, an iBeacon whose UUID is the keyturner service's and whose last byte's bit 0 says
"something changed, ask me" (new log entries nobody has read).

Faults on demand (:class:`NukiFaults`): replies cut into indications of a given size (the spec's
examples use 20 bytes; clients that treat each indication as a whole message break), the link
dropped before a command is acted on or after it was acted on but before the answer went out.

The keypad (:meth:`NukiBleLock.type_code`) decides from the lock's own memory and clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from bumble import gatt, hci
from bumble.device import Connection, Device

from drivers.nuki import profile
from drivers.nuki.messages import LockAction
from lockgate_sim.nuki.engine import LinkState, LockKey, NukiEngine
from lockgate_sim.nuki.model import NukiLockModel

log = logging.getLogger(__name__)

FAST_ADVERTISING_MS = 20.0
_LINK_LOST = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
_POWER_OFF = hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
_TEARDOWN = 2.0


@dataclass(slots=True)
class NukiFaults:
    fragment: int | None = None
    """Cut every reply into indications of this many bytes (``None``: one per message)."""
    drop_before_command: int | None = None
    """Drop the link when the n-th next sealed command arrives (0 = the next), unanswered."""
    drop_after_command: int | None = None
    """Act on the n-th next sealed command, then drop the link before answering it."""
    stall_before_command: int | None = None
    """Hold the n-th next sealed command unanswered until :meth:`NukiBleLock.resume` (a lock
    busy with its motor; a test stops the gateway in the middle of a batch this way)."""


@dataclass(slots=True)
class _Peer:
    connection: Connection
    link: LinkState = field(default_factory=LinkState)
    inbox: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class NukiLockStats:
    connections: int = 0
    indications: int = 0
    links_dropped: int = 0


class NukiBleLock:
    def __init__(
        self,
        model: NukiLockModel,
        device: Device,
        *,
        key: LockKey | None = None,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.model = model
        self.device = device
        self.engine = NukiEngine(model, key=key, rng=rng)
        self.faults = NukiFaults()
        self.stats = NukiLockStats()
        self._peers: dict[int, _Peer] = {}
        self._dirty = asyncio.Event()
        self._changed = asyncio.Condition()
        self._adv_task: asyncio.Task[None] | None = None
        self._closing = False
        self._advertising: bytes | None = None
        self._drops: set[asyncio.Task[None]] = set()
        self._ended: set[asyncio.Task[None]] = set()
        self._resume = asyncio.Event()
        self.stalled = False
        model.on_change = self._dirty.set
        props = gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.INDICATE
        self._pairing_char: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.PAIRING_CHAR_UUID,
            props,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_pairing_write),
        )
        self._general_char: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.GENERAL_CHAR_UUID,
            props,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_user_write),
        )
        self._user_char: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.USER_CHAR_UUID,
            props,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_user_write),
        )
        device.add_service(gatt.Service(profile.PAIRING_SERVICE_UUID, [self._pairing_char]))
        device.add_service(
            gatt.Service(profile.KEYTURNER_SERVICE_UUID, [self._general_char, self._user_char])
        )
        device.gatt_server.max_mtu = 247
        device.on("connection", self._on_connection)

    # --- identity --------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return str(self.device.random_address.to_string(with_type_qualifier=False))

    @property
    def name(self) -> str:
        return self.model.name

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.device.power_on()
        self._adv_task = asyncio.create_task(self._advertiser(), name=f"nuki-adv:{self.name}")
        self._dirty.set()
        await self.wait_for(lambda: self._advertising is not None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        await self._drop_all(_POWER_OFF)
        self._dirty.set()
        task, self._adv_task = self._adv_task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=_TEARDOWN)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after a change here (bound it with a timeout)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- what people do at the door ----------------------------------------------------------
    def press_pairing_button(self) -> None:
        """Hold the button 5 s: pairing mode until a client paired."""
        self.model.pairing_mode = True
        self._dirty.set()

    def type_code(self, digits: str, action: LockAction = LockAction.UNLOCK) -> bool:
        return self.model.type_code(digits, action)

    async def factory_reset(self) -> None:
        """Reset to factory settings (:meth:`NukiLockModel.factory_reset`): the lock restarts,
        dropping every link, and keeps its own key pair."""
        self.model.factory_reset()
        await self._drop_all(_LINK_LOST)
        self._dirty.set()

    # --- advertising -------------------------------------------------------------------------
    @property
    def state_changed(self) -> bool:
        log_ = self.model.log
        return bool(log_) and log_[-1].index > self.model.log_read_upto

    async def _advertiser(self) -> None:
        while not self._closing:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._apply_advertising()
            except Exception:  # the radio refused: try again at the next change
                log.exception("%s: advertising update failed", self.name)
            await self._notify_changed()
        if self.device.is_advertising:
            await self.device.stop_advertising()

    async def _apply_advertising(self) -> None:
        want = None
        if not self._closing and not self._peers:
            want = profile.beacon_advertising_data(changed=self.state_changed)
        active = self.device.is_advertising
        if want == self._advertising and (want is None or active):
            return
        if want is None:
            if active:
                await self.device.stop_advertising()
            self._advertising = None
            return
        if active:
            await self.device.stop_advertising()
        await self.device.start_advertising(
            advertising_data=want,
            advertising_interval_min=FAST_ADVERTISING_MS,
            advertising_interval_max=FAST_ADVERTISING_MS,
        )
        self._advertising = want

    # --- connections ---------------------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        peer = _Peer(connection)
        self._peers[connection.handle] = peer
        self.stats.connections += 1
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))
        peer.task = asyncio.create_task(self._worker(peer), name=f"nuki-rx:{self.name}")
        self._dirty.set()

    def _on_disconnection(self, connection: Connection) -> None:
        peer = self._peers.get(connection.handle)
        if peer is not None and peer.connection is connection:
            del self._peers[connection.handle]
            # told to stop, not cancelled: bumble swallows a cancellation that lands inside
            # an indication, and a task inside an HCI exchange must run to its end anyway
            peer.inbox.put_nowait(("end", b""))
            peer.gone.set()
            if peer.task is not None:
                self._ended.add(peer.task)
                peer.task.add_done_callback(self._ended.discard)
        self._dirty.set()

    def _peer(self, connection: Connection) -> _Peer | None:
        peer = self._peers.get(connection.handle)
        return peer if peer is not None and peer.connection is connection else None

    def _spawn_disconnect(self, connection: Connection, reason: int) -> None:
        async def drop() -> None:
            with contextlib.suppress(Exception):
                await connection.disconnect(reason)

        task = asyncio.create_task(drop(), name=f"nuki-drop:{self.name}")
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _drop_all(self, reason: int) -> None:
        peers = list(self._peers.values())
        for peer in peers:
            self._spawn_disconnect(peer.connection, reason)
        if self._drops:
            await asyncio.wait(set(self._drops), timeout=_TEARDOWN)
        for peer in peers:
            peer.inbox.put_nowait(("end", b""))
        tasks = {p.task for p in peers if p.task is not None} | self._ended
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_TEARDOWN)
            for task in late:
                task.cancel()
        self._peers.clear()

    async def drop_links(self) -> None:
        """The air drops every link now (out of range for a moment)."""
        self.stats.links_dropped += len(self._peers)
        await self._drop_all(_LINK_LOST)

    # --- writes --------------------------------------------------------------------------
    def _on_pairing_write(self, connection: Connection, value: bytes) -> None:
        peer = self._peer(connection)
        if peer is not None:
            peer.inbox.put_nowait(("pairing", bytes(value)))

    def _on_user_write(self, connection: Connection, value: bytes) -> None:
        peer = self._peer(connection)
        if peer is not None:
            peer.inbox.put_nowait(("user", bytes(value)))

    def _countdown(self, name: str) -> bool:
        left = getattr(self.faults, name)
        if left is None:
            return False
        if left <= 0:
            setattr(self.faults, name, None)
            return True
        setattr(self.faults, name, left - 1)
        return False

    async def _worker(self, peer: _Peer) -> None:
        while True:
            channel, data = await peer.inbox.get()
            if channel == "end":
                return
            try:
                if channel == "pairing":
                    replies = self.engine.pairing(peer.link, data)
                    char = self._pairing_char
                else:
                    if self._countdown("stall_before_command"):
                        await self._stall(peer)
                        if peer.gone.is_set():
                            return
                    if self._countdown("drop_before_command"):
                        self.stats.links_dropped += 1
                        self._spawn_disconnect(peer.connection, _LINK_LOST)
                        return
                    replies = self.engine.sealed(peer.link, data)
                    char = self._user_char
                    if self._countdown("drop_after_command"):
                        self.stats.links_dropped += 1
                        self._spawn_disconnect(peer.connection, _LINK_LOST)
                        return
                for reply in replies:
                    await self._indicate(peer, char, reply)
                await self._notify_changed()
            except (ConnectionError, OSError, asyncio.InvalidStateError) as err:
                log.debug("%s: reply not delivered: %s", self.name, err)
            except Exception:  # a bug in the simulated firmware: keep serving the link
                log.exception("%s: handling a %s message failed", self.name, channel)

    def resume(self) -> None:
        self._resume.set()

    async def _stall(self, peer: _Peer) -> None:
        self._resume.clear()
        self.stalled = True
        await self._notify_changed()
        resumed = asyncio.ensure_future(self._resume.wait())
        gone = asyncio.ensure_future(peer.gone.wait())
        try:
            await asyncio.wait({resumed, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            resumed.cancel()
            gone.cancel()
            self.stalled = False

    async def _indicate(
        self, peer: _Peer, char: gatt.Characteristic[bytes], message: bytes
    ) -> None:
        size = self.faults.fragment or len(message)
        for i in range(0, len(message), size):
            self.stats.indications += 1
            await self._one_indication(peer, char, message[i : i + size])

    async def _one_indication(
        self, peer: _Peer, char: gatt.Characteristic[bytes], chunk: bytes
    ) -> None:
        """Indicate and wait for the confirmation, or for the link to go (bumble would wait
        for a confirmation from a central that left until its 30 s GATT timeout)."""
        if peer.gone.is_set():
            raise ConnectionError("link gone")
        sent = asyncio.ensure_future(self.device.indicate_subscriber(peer.connection, char, chunk))
        gone = asyncio.ensure_future(peer.gone.wait())
        try:
            await asyncio.wait({sent, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not sent.done():
                sent.cancel()
                await asyncio.wait({sent}, timeout=_TEARDOWN)
        if sent.cancelled():
            raise ConnectionError("link gone while indicating")
        sent.result()
