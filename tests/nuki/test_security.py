"""From the attacker's side: replayed, forged and tampered messages, a wrong PIN, an impostor
lock during pairing, a lock that forgot the gateway; and no PIN or code in the logs."""

from __future__ import annotations

import logging
import os

import pytest
from lockgate_sim.nuki.engine import LinkState, NukiEngine, X25519LockKey
from lockgate_sim.nuki.gatt import NukiBleLock
from lockgate_sim.nuki.model import NukiLockModel

from drivers.errors import LockAuthError
from drivers.nuki import wire
from drivers.nuki.client import NukiClient
from drivers.nuki.messages import CodeWindow, LockAction, LockState, NewCode
from drivers.nuki.pairing import pair
from drivers.nuki.session import Channel, NukiError, NukiReplyError, NukiSession
from drivers.nuki.wire import Command, ErrorCode
from gateway.clock import FakeClock
from tests.ble.conftest import Adapter
from tests.nuki.conftest import SECURITY_PIN, nuki_driver
from tests.nuki.memory import MemoryTransport
from tests.nuki.test_driver import code


async def _paired(pin: int = 1234) -> tuple[NukiEngine, MemoryTransport, NukiClient]:
    model = NukiLockModel(pairing_mode=True, security_pin=1234)
    engine = NukiEngine(model)
    transport = MemoryTransport(engine)
    keys = await pair(transport, app_id=7, name="gw", within=1.0)
    return engine, transport, NukiClient(NukiSession(transport, keys, pin=pin))


def _error_of(engine: NukiEngine, reply: bytes, key: bytes | None) -> int:
    msg = wire.decode_plain(reply) if key is None else wire.decode_sealed(key, reply)
    assert msg.command == Command.ERROR_REPORT
    return msg.payload[0]


async def test_a_replayed_lock_action_is_refused() -> None:
    engine, transport, client = await _paired()
    await client.lock_action(LockAction.UNLOCK)
    engine.model.lock_state = LockState.LOCKED
    captured = [d for ch, d in transport.sent if ch is Channel.USER][-1]  # the Lock Action
    [reply] = engine.sealed(transport.link, captured)
    key = client.session.keys.shared_key
    assert _error_of(engine, reply, key) == ErrorCode.K_BAD_NONCE
    assert engine.model.lock_state == LockState.LOCKED
    # also on a fresh link (another connection of the attacker)
    [reply] = engine.sealed(LinkState(), captured)
    assert _error_of(engine, reply, key) == ErrorCode.K_BAD_NONCE


async def test_forged_and_tampered_messages_are_refused() -> None:
    engine, transport, client = await _paired()
    auth_id = client.session.keys.auth_id
    forged = wire.encode_sealed(
        os.urandom(32), auth_id, Command.REQUEST_DATA, b"\x0c\x00", bytes(24)
    )
    [reply] = engine.sealed(LinkState(), forged)
    assert _error_of(engine, reply, None) == ErrorCode.K_NOT_AUTHORIZED
    genuine = [d for ch, d in transport.sent if ch is Channel.USER]
    await client.states()
    good = [d for ch, d in transport.sent if ch is Channel.USER][len(genuine)]
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    [reply] = engine.sealed(LinkState(), tampered)
    assert _error_of(engine, reply, None) == ErrorCode.K_NOT_AUTHORIZED
    assert engine.stats.not_authorized == 2


async def test_a_wrong_pin_changes_nothing() -> None:
    engine, _, client = await _paired(pin=9999)
    with pytest.raises(NukiError) as err:
        await client.add_code(NewCode(482913, "x", CodeWindow()))
    assert err.value.code == ErrorCode.K_BAD_PIN
    assert engine.model.codes == {}


async def test_the_gateway_refuses_an_impostor_lock_during_pairing() -> None:
    class Impostor(MemoryTransport):
        """Relays to a real lock engine but cannot know the shared key: its Authorization-ID
        authenticator is made up."""

        async def write(self, channel: Channel, data: bytes) -> None:
            await super().write(channel, data)
            last = self.received[-1][1]
            msg = wire.decode_plain(last)
            if msg.command == Command.AUTHORIZATION_ID:
                fake = wire.encode_plain(msg.command, os.urandom(32) + msg.payload[32:])
                self.discard(channel)
                await self._queues[channel].put(fake)

    engine = NukiEngine(NukiLockModel(pairing_mode=True))
    with pytest.raises(NukiReplyError, match="not the lock we paired"):
        await pair(Impostor(engine), app_id=7, name="gw", within=1.0)


async def test_a_lock_refuses_a_client_that_cannot_prove_the_key() -> None:
    class WrongKey(X25519LockKey):
        def shared_with(self, peer_public: bytes) -> bytes:
            return os.urandom(32)  # a man in the middle with his own key

    engine = NukiEngine(NukiLockModel(pairing_mode=True), key=WrongKey(os.urandom(32)))
    with pytest.raises(NukiError) as err:
        await pair(MemoryTransport(engine), app_id=7, name="gw", within=1.0)
    assert err.value.code == ErrorCode.P_BAD_AUTHENTICATOR
    assert engine.model.auths == {}


async def test_a_lock_that_forgot_the_gateway_is_an_auth_error(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock
) -> None:
    async with nuki_driver(gateway, nuki, clock) as driver:
        nuki.model.auths.clear()  # removed in the Nuki app
        await driver.disconnect()
        with pytest.raises(LockAuthError, match="does not know this gateway"):
            await driver.status()


async def test_no_pin_and_no_code_in_the_logs(
    gateway: Adapter, nuki: NukiBleLock, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with nuki_driver(gateway, nuki, clock) as driver:
        assert (await driver.put_credentials([code("m1", "482913"), code("m2", "123456")])).failures
        await driver.list_credentials()
        assert str(SECURITY_PIN) not in repr(driver.ctx.keystore.data)  # type: ignore[attr-defined]
    # ours only: bumble's own debug hex dumps of random nonces may contain any digits
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("drivers", "gateway"))
    )
    assert "paired" in ours  # the driver did log
    assert "482913" not in ours and "123456" not in ours
    assert str(SECURITY_PIN) not in ours
