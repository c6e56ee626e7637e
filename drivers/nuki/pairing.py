"""Pairing with a Nuki lock (Smart Lock API V2.1, "Authorize App"), the gateway as a bridge.

The lock must be in pairing mode (its button held for 5 s). Keys are exchanged, the shared key
``s`` derived, and both sides prove they hold it with HMAC authenticators over the two
challenges; the lock then names the new authorization id.
"""

from __future__ import annotations

import os

from drivers.nuki import crypto
from drivers.nuki import wire as w
from drivers.nuki.messages import ID_TYPE_BRIDGE, encode_name
from drivers.nuki.session import Channel, NukiKeys, NukiReplyError, NukiTransport, receive_plain
from drivers.nuki.wire import Command, Status


async def pair(
    transport: NukiTransport,
    *,
    app_id: int,
    name: str,
    within: float,
    rng: crypto.Rng = os.urandom,
    private_key: bytes | None = None,
    id_type: int = ID_TYPE_BRIDGE,
) -> NukiKeys:
    """Run the pairing exchange; raises :class:`NukiError` when the lock refuses."""
    transport.discard(Channel.PAIRING)

    async def ask(command: int, payload: bytes, expect: int) -> bytes:
        await transport.write(Channel.PAIRING, w.encode_plain(command, payload))
        msg = await receive_plain(transport, within)
        if msg.command != expect:
            raise NukiReplyError(f"expected 0x{expect:04X}, got 0x{msg.command:04X}")
        return msg.payload

    private = private_key or crypto.new_private_key(rng)
    public = crypto.public_key(private)
    lock_public = await ask(Command.REQUEST_DATA, w.u16(Command.PUBLIC_KEY), Command.PUBLIC_KEY)
    shared = crypto.shared_key(private, lock_public)
    nonce_k = await ask(Command.PUBLIC_KEY, public, Command.CHALLENGE)
    authenticator = crypto.h1(shared, public, lock_public, nonce_k)
    nonce_k = await ask(Command.AUTHORIZATION_AUTHENTICATOR, authenticator, Command.CHALLENGE)
    nonce_a = rng(32)
    data = bytes([id_type]) + w.u32(app_id) + encode_name(name, 32) + nonce_a
    answer = await ask(
        Command.AUTHORIZATION_DATA,
        crypto.h1(shared, data, nonce_k) + data,
        Command.AUTHORIZATION_ID,
    )
    mac, auth_id_raw, uuid, nonce_k2 = answer[:32], answer[32:36], answer[36:52], answer[52:84]
    if not crypto.authentic(shared, mac, auth_id_raw, uuid, nonce_k2, nonce_a):
        raise NukiReplyError("the lock's authenticator does not verify: not the lock we paired")
    confirm = crypto.h1(shared, auth_id_raw, nonce_k2) + auth_id_raw
    status = await ask(Command.AUTHORIZATION_ID_CONFIRMATION, confirm, Command.STATUS)
    if status[:1] != bytes([Status.COMPLETE]):
        raise NukiReplyError("pairing not completed")
    return NukiKeys(int.from_bytes(auth_id_raw, "little"), private, lock_public, app_id)
