"""The one scanner of an adapter: it owns scanning and feeds advertisements to the drivers.

Drivers never scan themselves. :class:`AdvertScanner` runs one ``bleak.BleakScanner``
filtered on the Lockgate service UUID for as long as the adapter is in use, keeps the latest
sighting of each lock, and calls the drivers' subscriptions; a driver that wants to connect
asks for a fresh sighting (:meth:`AdvertScanner.wait_for`) and only then touches the radio.

Locks of another family on the same adapter (Nuki) share this scanner: their driver adds a
recogniser (:meth:`AdvertScanner.recognise`) and receives their adverts as sightings without
a Lockgate payload; the scan then runs without a service filter (a Nuki lock's UUID travels
in an iBeacon, not in the service list).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from drivers.ble.profile import COMPANY_ID, SERVICE_UUID, SHORT_ID_LEN, LockAdvert
from drivers.lockproto.errors import DecodeError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sighting:
    device: BLEDevice
    advert: LockAdvert | None
    """The Lockgate payload; ``None`` for an advert a recogniser accepted."""
    rssi: int
    seen_at: float
    """Event-loop time of the advertisement."""
    data: AdvertisementData | None = None
    """The whole advertisement (another lock family reads its own payload from it)."""

    @property
    def address(self) -> str:
        return self.device.address


Match = Callable[[Sighting], bool]
Recogniser = Callable[[AdvertisementData], bool]
Rank = Callable[[Sighting], int]
"""Higher first: which of several matching sightings to connect to (then the newest)."""


def _unranked(sighting: Sighting) -> int:
    return 0


def parse_advert(data: AdvertisementData) -> LockAdvert | None:
    """The Lockgate payload of an advertisement, whatever the maker's company id."""
    if SERVICE_UUID not in (u.lower() for u in data.service_uuids):
        return None
    candidates = [data.manufacturer_data.get(COMPANY_ID)]
    candidates += [v for k, v in data.manufacturer_data.items() if k != COMPANY_ID]
    for payload in candidates:
        if payload is not None and len(payload) == 1 + SHORT_ID_LEN:
            try:
                return LockAdvert.decode(payload)
            except DecodeError:
                continue
    return None


@dataclass(slots=True)
class ScannerStats:
    adverts: int = 0
    lockgate_adverts: int = 0


class AdvertScanner:
    def __init__(
        self, backend: type[BaseBleakScanner] | None, *, bluez: dict[str, Any] | None = None
    ) -> None:
        self._backend = backend
        self._bluez = bluez or {}
        self._scanner: BleakScanner | None = None
        self._latest: dict[str, Sighting] = {}
        self._subscribers: dict[int, tuple[Match, Callable[[Sighting], None]]] = {}
        self._next = 0
        self._waiters: list[tuple[Match, asyncio.Future[Sighting]]] = []
        self._recognisers: dict[int, Recogniser] = {}
        self._filtered = True
        self.stats = ScannerStats()

    async def start(self) -> None:
        if self._scanner is not None:
            return
        kwargs: dict[str, Any] = {"bluez": self._bluez} if self._bluez else {}
        self._filtered = not self._recognisers
        scanner = BleakScanner(
            self._on_advert,
            service_uuids=[SERVICE_UUID] if self._filtered else None,
            backend=self._backend,
            **kwargs,
        )
        await scanner.start()
        self._scanner = scanner

    async def stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            await scanner.stop()

    @property
    def running(self) -> bool:
        return self._scanner is not None

    async def recognise(self, recogniser: Recogniser) -> Callable[[], None]:
        """Report adverts ``recogniser`` accepts too; returns the function that stops it.

        A running scan filtered on the Lockgate service restarts without the filter."""
        key = self._next
        self._next += 1
        self._recognisers[key] = recogniser
        if self._scanner is not None and self._filtered:
            await self.stop()
            await self.start()

        def remove() -> None:
            self._recognisers.pop(key, None)

        return remove

    def subscribe(self, match: Match, callback: Callable[[Sighting], None]) -> Callable[[], None]:
        key = self._next
        self._next += 1
        self._subscribers[key] = (match, callback)

        def remove() -> None:
            self._subscribers.pop(key, None)

        return remove

    def latest(
        self, match: Match, *, rank: Rank = _unranked, fresh: float | None = None
    ) -> Sighting | None:
        """The best matching sighting: the highest ``rank``, then the newest (only those
        younger than ``fresh`` s when given). Several addresses may match one lock (a clone
        of its advertisement, a lock with a changing private address): the caller ranks."""
        oldest = None if fresh is None else asyncio.get_running_loop().time() - fresh
        found = [
            s for s in self._latest.values()
            if match(s) and (oldest is None or s.seen_at >= oldest)
        ]
        return max(found, key=lambda s: (rank(s), s.seen_at)) if found else None

    def forget(self, address: str) -> None:
        """A connect to it failed: the next connect waits for a new advertisement."""
        self._latest.pop(address, None)

    async def wait_for(
        self, match: Match, *, within: float, fresh: float, rank: Rank = _unranked
    ) -> Sighting:
        """The best sighting younger than ``fresh`` s, waiting up to ``within`` s for a new
        one if there is none."""
        found = self.latest(match, rank=rank, fresh=fresh)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        entry: tuple[Match, asyncio.Future[Sighting]] = (match, loop.create_future())
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(within):
                return await entry[1]
        finally:
            self._waiters.remove(entry)

    def _on_advert(self, device: BLEDevice, data: AdvertisementData) -> None:
        self.stats.adverts += 1
        advert = parse_advert(data)
        if advert is None:
            if not self._recognised(data):
                return
        else:
            self.stats.lockgate_adverts += 1
        sighting = Sighting(device, advert, data.rssi, asyncio.get_running_loop().time(), data)
        self._latest[device.address] = sighting
        for match, future in self._waiters:
            if not future.done() and match(sighting):
                future.set_result(sighting)
        for match, callback in list(self._subscribers.values()):
            if match(sighting):
                try:
                    callback(sighting)
                except Exception:  # a driver's bug must not stop the scanner for the others
                    log.exception("advertisement subscriber failed")

    def _recognised(self, data: AdvertisementData) -> bool:
        for recogniser in list(self._recognisers.values()):
            try:
                if recogniser(data):
                    return True
            except Exception:  # a driver's bug must not stop the scanner for the others
                log.exception("advertisement recogniser failed")
        return False
