"""A commissioned gateway/lock pair over the loopback carrier (shared by the proto tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Unpack

from lockgate_sim.lock import SimLockSpec
from lockgate_sim.proto_lock import LockEngine

from drivers.lockproto.client import ClientSession, LinkTiming
from drivers.lockproto.crypto import parse_pairing_secret
from drivers.lockproto.keys import LinkKeys
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.pairing import commission
from tests.proto.loopback import EngineOptions, LoopbackCarrier, Tamper, make_engine

FAST = LinkTiming(lock_reply=0.05, handshake_reply=0.05, attempts=3)


@dataclass
class Pair:
    engine: LockEngine
    carrier: LoopbackCarrier
    keys: LinkKeys
    session: ClientSession
    client: LockClient

    def other_gateway(self, keys: LinkKeys) -> LockClient:
        return LockClient(ClientSession(self.carrier, keys, lock_id="lock-1", timing=FAST))


async def make_pair(
    *,
    tamper: Tamper | None = None,
    spec: SimLockSpec | None = None,
    **engine_options: Unpack[EngineOptions],
) -> Pair:
    engine = make_engine(spec=spec, **engine_options)
    carrier = LoopbackCarrier(engine)
    secret = parse_pairing_secret(engine.pairing_secret)
    keys = await commission(carrier, secret, lock_id="lock-1", rng=os.urandom, timing=FAST)
    carrier.tamper = tamper
    session = ClientSession(carrier, keys, lock_id="lock-1", timing=FAST)
    return Pair(engine, carrier, keys, session, LockClient(session))
