"""The simulated phone: it holds a mobile key and opens a lock over the simulated radio.

A :class:`SimPhone` keeps an Ed25519 private key that never leaves it; the cloud's access
method carries only :attr:`SimPhone.public_key_text`. To open a door the phone finds the lock
by its advertisement, connects with the real ``bleak.BleakClient`` (through a backend on its
own simulated adapter), and runs the exchange of :mod:`drivers.ble.mobilekey`: HELLO with its
public key, the lock's fresh challenge, its signature, the lock's answer. Every exchange is
kept in :attr:`SimPhone.history` as an eavesdropper would have recorded it off the air, so a
test can replay one (:func:`replay`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from drivers.ble import mobilekey as mk
from drivers.ble.profile import ATT_WRITE_OVERHEAD, MOBILE_KEY_UUID, SERVICE_UUID
from drivers.ble.scanner import parse_advert
from drivers.ble.segment import Reassembler, segment
from drivers.lockproto.crypto import Rng
from lockgate_sim.ble.backend import BumbleBackends


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    """What crossed the air in one attempt (all of it is public)."""

    public_key: bytes
    challenge: bytes
    device_id: bytes
    signature: bytes
    result: mk.KeyResult


class _KeyChannel:
    """The mobile-key characteristic as a message channel (segmented like every datagram)."""

    def __init__(self, client: BleakClient) -> None:
        self._client = client
        self._reassembler = Reassembler(512)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def open(self) -> None:
        await self._client.start_notify(MOBILE_KEY_UUID, self._notified)

    def _notified(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        message = self._reassembler.feed(bytes(data))
        if message is not None:
            self._queue.put_nowait(message)

    async def send(self, msg: mk.KeyMessage) -> None:
        size = self._client.mtu_size - ATT_WRITE_OVERHEAD
        segments = segment(mk.encode(msg), size)
        for i, seg in enumerate(segments):
            await self._client.write_gatt_char(
                MOBILE_KEY_UUID, seg, response=i == len(segments) - 1
            )

    async def receive(self, within: float) -> mk.KeyMessage:
        async with asyncio.timeout(within):
            return mk.decode(await self._queue.get())


async def find_lock(
    backends: BumbleBackends,
    *,
    device_id: bytes | None = None,
    address: str | None = None,
    within: float = 2.0,
) -> BLEDevice:
    """Scan until the wanted lock advertises (by its short id or its address)."""
    found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

    def seen(device: BLEDevice, data: AdvertisementData) -> None:
        advert = parse_advert(data)
        if advert is None or found.done():
            return
        if address is not None and device.address.upper() != address.upper():
            return
        if device_id is not None and advert.short_id != device_id[: len(advert.short_id)]:
            return
        found.set_result(device)

    async with (
        BleakScanner(seen, service_uuids=[SERVICE_UUID], backend=backends.scanner),
        asyncio.timeout(within),
    ):
        return await found


async def _exchange(
    backends: BumbleBackends,
    device: BLEDevice,
    public_key: bytes,
    answer: bytes | None,
    private_key: bytes | None,
    within: float,
) -> RecordedExchange:
    async with BleakClient(device, backend=backends.client, timeout=within) as client:
        channel = _KeyChannel(client)
        await channel.open()
        await channel.send(mk.KeyHello(public_key))
        msg = await channel.receive(within)
        if isinstance(msg, mk.KeyResult):
            return RecordedExchange(public_key, b"", b"", b"", msg)
        if not isinstance(msg, mk.KeyChallenge):
            raise TypeError(f"lock answered HELLO with {msg!r}")
        if answer is None:
            assert private_key is not None
            answer = mk.sign(private_key, msg.device_id, msg.challenge)
        await channel.send(mk.KeyProof(answer))
        result = await channel.receive(within)
        if not isinstance(result, mk.KeyResult):
            raise TypeError(f"lock answered PROOF with {result!r}")
        return RecordedExchange(public_key, msg.challenge, msg.device_id, answer, result)


class SimPhone:
    def __init__(
        self,
        name: str,
        backends: BumbleBackends,
        *,
        private_key: bytes | None = None,
        rng: Rng = os.urandom,
        timeout: float = 2.0,
    ) -> None:
        self.name = name
        self.backends = backends
        self._private_key = private_key or rng(32)
        self.public_key = mk.public_key_of(self._private_key)
        self.timeout = timeout
        self.history: list[RecordedExchange] = []

    @property
    def public_key_text(self) -> str:
        """What the cloud's ``mobile_key.public_key`` field holds."""
        return mk.public_key_text(self.public_key).decode("ascii")

    @property
    def key_id(self) -> bytes:
        return mk.key_id(self.public_key)

    async def open(
        self, *, device_id: bytes | None = None, address: str | None = None
    ) -> mk.KeyResult:
        """Walk up to the lock and present the key; returns the lock's answer."""
        device = await find_lock(
            self.backends, device_id=device_id, address=address, within=self.timeout
        )
        record = await _exchange(
            self.backends, device, self.public_key, None, self._private_key, self.timeout
        )
        self.history.append(record)
        return record.result


async def replay(
    backends: BumbleBackends,
    recorded: RecordedExchange,
    *,
    device_id: bytes | None = None,
    address: str | None = None,
    within: float = 2.0,
) -> mk.KeyResult:
    """An attacker who recorded ``recorded`` off the air sends its signature again."""
    device = await find_lock(backends, device_id=device_id, address=address, within=within)
    record = await _exchange(
        backends, device, recorded.public_key, recorded.signature, None, within
    )
    return record.result
