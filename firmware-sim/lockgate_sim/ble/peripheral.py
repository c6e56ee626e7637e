"""The simulated BLE lock: a :class:`SimLock` and its protocol engine behind a GATT server.

:class:`BleLock` hosts the Lockgate GATT profile (:mod:`drivers.ble.profile`) on a bumble
device of a :class:`~lockgate_sim.ble.radio.VirtualRadio`, advertises the service UUID and its
short id, reassembles command segments into datagrams for the carrier-independent
:class:`~lockgate_sim.proto_lock.LockEngine` and notifies its replies back in segments. The
mobile-key characteristic runs the phone's exchange (:mod:`drivers.ble.mobilekey`) and the
lock decides it from its own memory (:attr:`SimLock.mobile_key_verifier`).

Faults on demand (:class:`BleFaults`): the link dropped in the middle of a write, a sleepy lock
that advertises slowly, an ATT MTU of 23, lost notifications; and :meth:`BleLock.power_off`
for a lock that is gone. The lock drops a central that stayed silent for ``idle_timeout_s``
(on the injected clock), as firmware does to save battery.

Use as an async context manager: it owns tasks (one worker per connection, the advertiser).
Tasks that may be inside an HCI command (advertising, disconnecting) are never cancelled:
bumble's host breaks when a command's response arrives for a cancelled request. They are
told to stop and awaited instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from bumble import gatt, hci
from bumble.device import Connection, Device

from drivers.base import CredentialKind, LockEvent
from drivers.ble import mobilekey as mk
from drivers.ble import profile
from drivers.ble.segment import Reassembler, segment
from drivers.lockproto.convert import to_unix
from drivers.lockproto.crypto import Rng
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.framing import MAX_DATAGRAM
from lockgate_sim.lock import SimLock
from lockgate_sim.proto_lock import LockEngine

log = logging.getLogger(__name__)

FAST_ADVERTISING_MS = 20.0
CHALLENGE_TTL = timedelta(seconds=30)
_TEARDOWN = 2.0
_POWER_OFF = hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
_LINK_LOST = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
_IDLE = hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR


class WaitClock(Protocol):
    """What the lock needs of a clock (``gateway.clock.FakeClock`` fits)."""

    def now(self) -> datetime: ...

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        timeout = None if deadline is None else (deadline - self.now()).total_seconds()
        if timeout is not None and timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wake.wait()


@dataclass(slots=True)
class BleFaults:
    """What goes wrong on a BLE link, switched on by tests and the simulator's command line."""

    drop_link_after_segments: int | None = None
    """Drop the link when this many more command segments have arrived (mid-datagram)."""
    advertising_interval_ms: float = FAST_ADVERTISING_MS
    """A sleepy lock advertises slowly (battery locks: 500-2000 ms); the gateway must wait."""
    lose_next_notifications: int = 0
    """Lose this many of the next notification segments (the session retransmits)."""
    lose_every_notification: int | None = None
    """Lose every n-th notification segment while set."""


@dataclass(slots=True)
class _Peer:
    connection: Connection
    commands: Reassembler
    keys: Reassembler
    inbox: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)
    activity: asyncio.Event = field(default_factory=asyncio.Event)
    last_rx: datetime | None = None
    key: bytes | None = None
    challenge: tuple[bytes, datetime] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass(slots=True)
class BleLockStats:
    connections: int = 0
    datagrams_in: int = 0
    datagrams_out: int = 0
    notifications_lost: int = 0
    links_dropped: int = 0
    idle_disconnects: int = 0
    key_attempts: int = 0


class BleLock:
    def __init__(
        self,
        lock: SimLock,
        device: Device,
        *,
        clock: WaitClock | None = None,
        rng: Rng = os.urandom,
        max_message: int = 4096,
        reply_ms: int = 150,
        idle_timeout_s: int = 20,
        max_centrals: int = 2,
        max_mtu: int = 247,
    ) -> None:
        self.lock = lock
        self.device = device
        self.clock: WaitClock = clock or RealClock()
        self.faults = BleFaults()
        self.stats = BleLockStats()
        self.engine = LockEngine(lock, rng=rng, max_message=max_message, reply_ms=reply_ms)
        self.idle_timeout_s = idle_timeout_s
        self.max_centrals = max_centrals
        self.max_datagram = min(MAX_DATAGRAM * 4, max_message + 64)
        self._rng = rng
        self._notifications_seen = 0
        self._peers: dict[int, _Peer] = {}
        self._powered = True
        self._adv_dirty = asyncio.Event()
        self._adv_task: asyncio.Task[None] | None = None
        self._closing = False
        self._drops: set[asyncio.Task[None]] = set()
        self._advertising: tuple[bytes, float] | None = None
        self._changed = asyncio.Condition()
        self._decide_online = lock.online_decider
        lock.online_decider = self._ask_gateway
        previous_on_event = lock.on_event

        def on_event(event: LockEvent) -> None:
            if previous_on_event is not None:
                previous_on_event(event)
            self._adv_dirty.set()

        lock.on_event = on_event
        device_id = self.device_id
        lock.mobile_key_verifier = lambda stored, proof: _verify(stored, proof, device_id)
        self._rsp: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.RESPONSE_UUID,
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            b"",
        )
        self._status: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.STATUS_UUID,
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=lambda _conn: bytes((self.flags(),))),
        )
        self._notified_flags: profile.AdvertFlag | None = None
        self._key: gatt.Characteristic[bytes] = gatt.Characteristic(
            profile.MOBILE_KEY_UUID,
            gatt.Characteristic.Properties.WRITE
            | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_key_write),
        )
        service = gatt.Service(
            profile.SERVICE_UUID,
            [
                gatt.Characteristic(
                    profile.COMMAND_UUID,
                    gatt.Characteristic.Properties.WRITE
                    | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=self._on_command_write),
                ),
                self._rsp,
                gatt.Characteristic(
                    profile.DEVICE_INFO_UUID,
                    gatt.Characteristic.Properties.READ,
                    gatt.Characteristic.READABLE,
                    gatt.CharacteristicValue(read=self._on_info_read),
                ),
                self._key,
                self._status,
            ],
        )
        device.add_service(service)
        device.gatt_server.max_mtu = max_mtu
        device.on("connection", self._on_connection)

    # --- identity ----------------------------------------------------------------------------
    @property
    def device_id(self) -> bytes:
        return self.engine.store.device_id

    @property
    def pairing_secret(self) -> str:
        return self.engine.pairing_secret

    @property
    def address(self) -> str:
        return str(self.device.random_address)

    @property
    def connected_centrals(self) -> int:
        return len(self._peers)

    def set_max_mtu(self, mtu: int) -> None:
        """Takes effect at the next MTU exchange (the next connection)."""
        self.device.gatt_server.max_mtu = mtu

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        await self.device.power_on()
        self._adv_task = asyncio.create_task(self._advertiser(), name=f"ble-lock-adv:{self.name}")
        self._adv_dirty.set()

    async def close(self) -> None:
        self._powered = False
        await self._drop_all(_POWER_OFF)
        self._closing = True
        self._adv_dirty.set()
        task, self._adv_task = self._adv_task, None
        if task is not None:
            await _finish(task)

    @property
    def name(self) -> str:
        return self.lock.lock_id

    async def power_off(self) -> None:
        """The lock is gone (battery out, out of range): links drop, adverts stop."""
        self._powered = False
        await self._drop_all(_POWER_OFF)
        self._adv_dirty.set()
        await self._wait_advertising(None)

    async def power_on(self) -> None:
        self._powered = True
        self._adv_dirty.set()
        await self._wait_advertising(True)

    def refresh_advertising(self) -> None:
        """Apply changed faults (interval) or state (flags) to the advertisement."""
        self._adv_dirty.set()

    async def _wait_advertising(self, on: bool | None) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: (self._advertising is not None) == bool(on))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after some change here (bound it with a timeout)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- advertising -------------------------------------------------------------------------
    def flags(self) -> profile.AdvertFlag:
        flags = profile.AdvertFlag(0)
        if self.engine.store.commissioned:
            flags |= profile.AdvertFlag.COMMISSIONED
        if self.lock.log:
            flags |= profile.AdvertFlag.EVENTS_WAITING
        if self.engine.access.waiting:
            flags |= profile.AdvertFlag.ACCESS_REQUEST
        return flags

    async def _advertiser(self) -> None:
        while not self._closing:
            await self._adv_dirty.wait()
            self._adv_dirty.clear()
            try:
                await self._apply_advertising()
                await self._notify_status()
            except Exception:  # the radio refused: log, try again at the next change
                log.exception("%s: advertising update failed", self.name)
            await self._notify_changed()
        if self.device.is_advertising:
            await self.device.stop_advertising()

    async def _apply_advertising(self) -> None:
        want: tuple[bytes, float] | None = None
        if self._powered and not self._closing and len(self._peers) < self.max_centrals:
            advert = profile.LockAdvert.for_device(self.device_id, self.flags())
            want = (profile.advertising_data(advert), self.faults.advertising_interval_ms)
        # a connection ends legacy advertising in the controller: check, not just remember
        active = self.device.is_advertising
        if want == self._advertising and (want is None or active):
            return
        if want is None:
            if active:
                await self.device.stop_advertising()
            self._advertising = None
            return
        data, interval = want
        await self.device.start_advertising(
            advertising_data=data,
            advertising_interval_min=interval,
            advertising_interval_max=interval,
        )
        self._advertising = want

    async def _notify_status(self) -> None:
        """Connected centrals learn the flags from the status characteristic."""
        flags = self.flags()
        if flags == self._notified_flags or not self._peers:
            return
        self._notified_flags = flags
        await self.device.notify_subscribers(self._status, bytes((flags,)))

    # --- connections -------------------------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        if not self._powered:
            self._spawn_disconnect(connection, _POWER_OFF)
            return
        peer = _Peer(connection, Reassembler(self.max_datagram), Reassembler(512))
        self._peers[connection.handle] = peer
        self.stats.connections += 1
        peer.last_rx = self.clock.now()
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))
        peer.tasks.append(asyncio.create_task(self._worker(peer), name=f"ble-lock-rx:{self.name}"))
        if self.idle_timeout_s:
            peer.tasks.append(
                asyncio.create_task(self._idle_watch(peer), name=f"ble-lock-idle:{self.name}")
            )
        self._adv_dirty.set()

    def _on_disconnection(self, connection: Connection) -> None:
        # handles are reused: a late event of an old link must not end its successor
        peer = self._peers.get(connection.handle)
        if peer is not None and peer.connection is connection:
            del self._peers[connection.handle]
            for task in peer.tasks:
                task.cancel()
        self._adv_dirty.set()

    def _spawn_disconnect(self, connection: Connection, reason: int) -> asyncio.Task[None]:
        """Disconnect in a task of its own that nobody cancels (see the module's notes)."""

        async def drop() -> None:
            with contextlib.suppress(Exception):
                await connection.disconnect(reason)

        task = asyncio.create_task(drop(), name=f"ble-lock-drop:{self.name}")
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)
        return task

    async def _drop_all(self, reason: int) -> None:
        peers = list(self._peers.values())
        drops = [self._spawn_disconnect(peer.connection, reason) for peer in peers]
        if self._drops:
            await asyncio.wait(set(self._drops) | set(drops), timeout=_TEARDOWN)
        for peer in peers:
            for task in peer.tasks:
                task.cancel()
            await asyncio.gather(*peer.tasks, return_exceptions=True)
        self._peers.clear()

    async def _idle_watch(self, peer: _Peer) -> None:
        timeout = timedelta(seconds=self.idle_timeout_s)
        while True:
            assert peer.last_rx is not None
            deadline = peer.last_rx + timeout
            if self.clock.now() >= deadline:
                self.stats.idle_disconnects += 1
                log.debug("%s: central idle for %s s: dropping it", self.name, self.idle_timeout_s)
                self._spawn_disconnect(peer.connection, _IDLE)
                return
            peer.activity.clear()
            await self.clock.wait_until(deadline, peer.activity)

    # --- the command channel -----------------------------------------------------------------
    async def _on_command_write(self, connection: Connection, value: bytes) -> None:
        # runs inside bumble's ATT handling: never raise
        peer = self._peer(connection)
        if peer is None or not self._powered:
            return
        self._touch(peer)
        faults = self.faults
        if faults.drop_link_after_segments is not None:
            if faults.drop_link_after_segments <= 0:
                faults.drop_link_after_segments = None
                self.stats.links_dropped += 1
                log.debug("%s: fault: dropping the link in the middle of a write", self.name)
                # the write stays unanswered: the central sees the link go with it pending
                with contextlib.suppress(Exception):
                    await connection.disconnect(_LINK_LOST)
                return
            faults.drop_link_after_segments -= 1
        datagram = peer.commands.feed(bytes(value))
        if datagram is not None:
            peer.inbox.put_nowait(("command", datagram))

    async def _on_key_write(self, connection: Connection, value: bytes) -> None:
        peer = self._peer(connection)
        if peer is None or not self._powered:
            return
        self._touch(peer)
        message = peer.keys.feed(bytes(value))
        if message is not None:
            peer.inbox.put_nowait(("key", message))

    def _peer(self, connection: Connection) -> _Peer | None:
        peer = self._peers.get(connection.handle)
        return peer if peer is not None and peer.connection is connection else None

    def _on_info_read(self, connection: Connection) -> bytes:
        peer = self._peer(connection)
        if peer is not None:
            self._touch(peer)
        return profile.DeviceInfoRecord(
            self.device_id, self.max_datagram, self.idle_timeout_s, self.flags()
        ).encode()

    def _touch(self, peer: _Peer) -> None:
        peer.last_rx = self.clock.now()
        peer.activity.set()

    async def _worker(self, peer: _Peer) -> None:
        while True:
            channel, data = await peer.inbox.get()
            try:
                if channel == "command":
                    self.stats.datagrams_in += 1
                    reply = await self.engine.handle(data)
                    if reply is not None:
                        self.stats.datagrams_out += 1
                        await self._send(peer, self._rsp, reply, lossy=True)
                    self._adv_dirty.set()
                    await self._notify_changed()
                else:
                    await self._on_key_message(peer, data)
            except (ConnectionError, OSError, asyncio.InvalidStateError) as err:
                log.debug("%s: reply not delivered: %s", self.name, err)
            except Exception:  # a bug in the simulated firmware: keep serving the link
                log.exception("%s: handling a %s datagram failed", self.name, channel)

    async def _send(
        self, peer: _Peer, characteristic: gatt.Characteristic[bytes], data: bytes, *, lossy: bool
    ) -> None:
        size = peer.connection.att_mtu - profile.ATT_WRITE_OVERHEAD
        for seg in segment(data, size):
            if lossy and self._lose_this_one():
                self.stats.notifications_lost += 1
                continue
            await self.device.notify_subscriber(peer.connection, characteristic, seg)

    def _lose_this_one(self) -> bool:
        faults = self.faults
        if faults.lose_next_notifications > 0:
            faults.lose_next_notifications -= 1
            return True
        every = faults.lose_every_notification
        if every:
            self._notifications_seen += 1
            return self._notifications_seen % every == 0
        return False

    # --- the mobile-key channel --------------------------------------------------------------
    async def _on_key_message(self, peer: _Peer, data: bytes) -> None:
        try:
            msg = mk.decode(data)
        except DecodeError:
            await self._key_result(peer, False, "malformed")
            return
        match msg:
            case mk.KeyHello(public_key=hello_key, version=version):
                if version != mk.VERSION:
                    await self._key_result(peer, False, "version")
                    return
                challenge = self._rng(mk.CHALLENGE_LEN)
                now = self.lock.now()
                peer.key, peer.challenge = hello_key, (challenge, now)
                reply = mk.KeyChallenge(challenge, self.device_id, to_unix(now))
                await self._send(peer, self._key, mk.encode(reply), lossy=False)
            case mk.KeyProof(signature=signature):
                self.stats.key_attempts += 1
                key, issued = peer.key, peer.challenge
                peer.key = peer.challenge = None  # one answer per challenge, right or wrong
                if key is None or issued is None:
                    await self._key_result(peer, False, "no_challenge")
                    return
                if self.lock.now() - issued[1] > CHALLENGE_TTL:
                    await self._key_result(peer, False, "challenge_expired")
                    return
                proof = mk.Proof(issued[0], self.device_id, signature)
                allow = await self.lock.present_mobile_key(mk.public_key_text(key), proof.encode())
                reason = self._last_reason(allow)
                await self._key_result(peer, allow, reason)
            case _:
                await self._key_result(peer, False, "unexpected")

    def _last_reason(self, allow: bool) -> str:
        entries = self.lock.log
        if entries and entries[-1].reason:
            return entries[-1].reason
        return "valid" if allow else "denied"

    async def _key_result(self, peer: _Peer, allow: bool, reason: str) -> None:
        await self._send(peer, self._key, mk.encode(mk.KeyResult(allow, reason)), lossy=False)

    # --- online decisions --------------------------------------------------------------------
    async def _ask_gateway(
        self, kind: CredentialKind, secret: bytes, proof: bytes | None
    ) -> tuple[bool, str, str | None]:
        decide = self._decide_online
        if decide is None:
            return False, "unknown_credential", None
        self._adv_dirty.set()
        try:
            return await decide(kind, secret, proof)
        finally:
            self._adv_dirty.set()


async def _finish(task: asyncio.Task[None]) -> None:
    """Await a task told to stop; cancel it only if it does not stop in time."""
    done, _ = await asyncio.wait({task}, timeout=_TEARDOWN)
    if not done:
        log.warning("%s did not stop: cancelling it", task.get_name())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _verify(stored: bytes, proof: bytes, device_id: bytes) -> bool:
    """The lock's own check of a mobile key: the stored public key, this lock's id."""
    try:
        public_key = mk.parse_public_key_text(stored)
        parsed = mk.Proof.decode(proof)
    except (ValueError, DecodeError):
        return False
    return parsed.device_id == device_id and mk.verify(public_key, parsed)
