"""The lock's protocol engine: one datagram in, one datagram (or silence) out.

Carrier-independent: the serial bus simulator calls :meth:`LockEngine.handle` with the
datagram of each frame addressed to this lock and sends back what it returns; a BLE lock does
the same with GATT writes and notifications. Reboots of the :class:`SimLock` (on demand or in
the middle of a batch) drop every session; the lock then stays silent for ``boot_time``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.lockproto import datagrams as dgm
from drivers.lockproto.crypto import Rng
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.messages import decode_request
from lockgate_sim.lock import LockRebooted, SimLock
from lockgate_sim.proto_lock.access import AccessQueue
from lockgate_sim.proto_lock.handlers import LockApp
from lockgate_sim.proto_lock.link_store import LinkStore
from lockgate_sim.proto_lock.responder import PAIRING_COOLDOWN, Refusals, Responder


@dataclass(slots=True)
class EngineStats:
    datagrams: int = 0
    requests: int = 0
    duplicates: int = 0
    silent: int = 0
    reboots: int = 0


class LockEngine:
    def __init__(
        self,
        lock: SimLock,
        *,
        rng: Rng = os.urandom,
        max_message: int = 1024,
        reply_ms: int = 150,
        access_timeout: float = 5.0,
        boot_time: float = 0.02,
        pairing_cooldown: float = PAIRING_COOLDOWN,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = lock
        self.store = LinkStore(lock, rng)
        self.refusals = Refusals()
        self.stats = EngineStats()
        self.responder = Responder(
            self.store,
            rng=rng,
            refusals=self.refusals,
            monotonic=monotonic,
            pairing_cooldown=pairing_cooldown,
        )
        self.access = AccessQueue(lock.now, timeout=access_timeout)
        self.app = LockApp(lock, self.access, max_message=max_message, reply_ms=reply_ms)
        self.boot_time = boot_time
        lock.online_decider = self.access.ask
        self._boots = lock.boots
        self._silent_until = 0.0

    @property
    def pairing_secret(self) -> str:
        """What the lock's label shows (a simulated lock may print it)."""
        return self.store.pairing_label

    def reset_pairing(self, new_pairing_secret: bytes | None = None) -> None:
        """The installer's reset: forget the gateway and accept commissioning again."""
        self.store.reset(new_pairing_secret)
        self.responder.reset()

    def factory_reset(self) -> None:
        """The full wipe (:meth:`SimLock.wipe`): at the next boot the lock draws a new device
        id, static key and pairing secret, and its log counts from 1 again."""
        self.lock.wipe()
        self.store.first_boot()
        self.responder.reset()
        self.access.drop_all()

    def _check_boot(self) -> None:
        if self.lock.boots != self._boots:
            self._boots = self.lock.boots
            self.stats.reboots += 1
            self.responder.forget_sessions()
            self.access.drop_all()
            self._silent_until = asyncio.get_running_loop().time() + self.boot_time

    async def handle(self, data: bytes) -> bytes | None:
        self.stats.datagrams += 1
        self._check_boot()
        if self.lock.faults.offline or asyncio.get_running_loop().time() < self._silent_until:
            self.stats.silent += 1
            return None
        try:
            dg = dgm.decode(data)
        except DecodeError:
            self.refusals.add("malformed")
            return None
        match dg:
            case dgm.Hello():
                return self.responder.on_hello(dg, data)
            case dgm.Data():
                return await self._on_data(dg)
            case dgm.PairStart():
                return self.responder.on_pair_start(dg, data)
            case dgm.PairProof():
                return self.responder.on_pair_proof(dg)
            case _:
                self.refusals.add("unexpected")
                return None

    async def _on_data(self, dg: dgm.Data) -> bytes | None:
        opened = self.responder.open_data(dg)
        if not isinstance(opened, tuple):
            return opened
        session, plaintext = opened
        try:
            req = decode_request(plaintext)
        except DecodeError:
            self.refusals.add("malformed_message")
            return None
        if req.req_id == session.last_req_id and session.last_reply is not None:
            self.stats.duplicates += 1
            return dgm.encode(session.channel.seal(session.last_reply))
        self.stats.requests += 1
        try:
            reply = await self.app.handle(req, len(plaintext))
        except LockRebooted:
            self._check_boot()
            return None
        except ConnectionError:
            self.stats.silent += 1
            return None
        if self.lock.boots != self._boots:
            self._check_boot()
            return None
        session.last_req_id, session.last_reply = req.req_id, reply
        return dgm.encode(session.channel.seal(reply))
