"""The lock driver for the Lockgate lock protocol, whatever carries its datagrams.

:class:`ProtocolDriver` is everything the serial and BLE drivers have in common: the link keys
from ``ctx.keystore``, the session (:class:`~drivers.lockproto.client.ClientSession`) and the
operations (:class:`~drivers.lockproto.lockclient.LockClient`) over a carrier, commissioning,
and the :class:`~drivers.base.LockDriver` members. A link subclass supplies the carrier
(:meth:`ProtocolDriver._carrier`, brought up on demand) and, if the link needs one, what wraps
each exchange (:meth:`ProtocolDriver._run`: BLE brings the radio link up for it and retries on a
fresh link); nothing else. Long-term link keys live under
:func:`~drivers.lockproto.keys.keystore_name`.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from drivers.base import (
    BatchResult,
    Capabilities,
    Credential,
    DriverContext,
    DriverOptions,
    EventPage,
    LockDriver,
    LockStatus,
    StoredCredential,
)
from drivers.errors import LockAuthError
from drivers.lockproto.carrier import Carrier
from drivers.lockproto.client import ClientSession, LinkTiming, SessionState
from drivers.lockproto.crypto import Rng
from drivers.lockproto.keys import LinkKeys, load_link_keys, not_commissioned, save_link_keys
from drivers.lockproto.lockclient import LockClient
from drivers.lockproto.pairing import commission, read_pairing_secret
from drivers.lockproto.requests import PollReplies

log = logging.getLogger(__name__)

T = TypeVar("T")


class ProtocolDriver(LockDriver):
    """A :class:`~drivers.base.LockDriver` speaking the Lockgate lock protocol over a carrier."""

    def __init__(
        self,
        lock_id: str,
        options: DriverOptions,
        ctx: DriverContext,
        *,
        timing: LinkTiming,
        rng: Rng = os.urandom,
    ) -> None:
        super().__init__(lock_id, options, ctx)
        self._timing = timing
        self._rng = rng
        self._client: LockClient | None = None
        self._keys: LinkKeys | None = None
        """The link keys, opened from the key store once (not on every poll); commissioning
        replaces them."""

    # --- what a link supplies ----------------------------------------------------------------
    @abstractmethod
    async def _carrier(self) -> Carrier:
        """The carrier to this lock, set up (a bus address on an open port, a GATT carrier)."""

    async def _run(self, op: Callable[[LockClient], Awaitable[T]]) -> T:
        """Run one operation on the session; a link that must come up for it overrides this."""
        return await op(await self._ready())

    async def _commissioning(self, pair: Callable[[], Awaitable[LinkKeys]]) -> LinkKeys:
        """Run the pairing exchange; a link that must come up for it overrides this."""
        return await pair()

    def _keys_in_use(self, keys: LinkKeys) -> None:
        """The session now uses ``keys`` (BLE then expects the lock's device id in adverts)."""

    def _commissioned(self) -> None:
        """Called once a commissioning succeeded and the link is up."""

    def _poll_replies(self) -> PollReplies | None:
        """Where the link's POLL replies are served (the lock's newest ``seq`` is read there),
        if the link polls."""
        return None

    def _changing(self) -> None:
        """Called before the gateway changes the lock (its credentials, its bolt): a link that
        paces itself on activity (serial polling) hears of it."""

    # --- keys and session --------------------------------------------------------------------
    @property
    def session(self) -> ClientSession | None:
        return self._client.session if self._client else None

    def _link_keys(self) -> LinkKeys | None:
        """The lock's link keys (``None`` before it is commissioned), from memory once read."""
        if self._keys is None:
            self._keys = load_link_keys(self.ctx.keystore, self.lock_id)
        return self._keys

    async def _ready(self) -> LockClient:
        carrier = await self._carrier()
        keys = self._link_keys()
        if keys is None:
            raise not_commissioned(self.lock_id)
        if self._client is None or self._client.session.keys != keys:
            session = ClientSession(
                carrier, keys, lock_id=self.lock_id, rng=self._rng, timing=self._timing
            )
            self._client = LockClient(session)
            self._keys_in_use(keys)
        return self._client

    # --- link --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.session.state is SessionState.OPEN

    async def connect(self) -> None:
        async def open_session(client: LockClient) -> None:
            await client.session.open()
            await client.device_info(refresh=True)

        await self._run(open_session)

    async def disconnect(self) -> None:
        if self._client is not None:
            self._client.session.drop()

    async def commission(self, pairing_secret: str) -> None:
        secret = read_pairing_secret(pairing_secret, lock_id=self.lock_id)
        carrier = await self._carrier()

        async def pair() -> LinkKeys:
            return await commission(
                carrier, secret, lock_id=self.lock_id, rng=self._rng, timing=self._timing
            )

        try:
            keys = await self._commissioning(pair)
        except LockAuthError:
            if self._link_keys() is None:
                raise
            await self.connect()  # already ours: commissioning again is a no-op
            return
        save_link_keys(self.ctx.keystore, self.lock_id, keys)
        self._keys = keys
        self._client = None
        self._keys_in_use(keys)
        log.info("%s: commissioned (device %s)", self.lock_id, keys.device_id.hex())
        await self.connect()
        self._commissioned()

    # --- operations --------------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        return await self._run(lambda c: c.capabilities())

    async def list_credentials(self) -> list[StoredCredential]:
        return await self._run(lambda c: c.list_credentials())

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        self._changing()
        return await self._run(lambda c: c.put_credentials(batch))

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        self._changing()
        return await self._run(lambda c: c.delete_credentials(credential_ids))

    async def lock(self) -> None:
        self._changing()
        await self._run(lambda c: c.lock())

    async def unlock(self, hold_seconds: float | None = None) -> None:
        self._changing()
        await self._run(lambda c: c.unlock(hold_seconds))

    async def status(self) -> LockStatus:
        return await self._run(lambda c: c.status())

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        page = await self._run(lambda c: c.fetch_events(after_seq, limit))
        replies = self._poll_replies()
        if page.events and replies is not None:
            replies.read_answered()
        return page

    async def ack_events(self, up_to_seq: int) -> None:
        await self._run(lambda c: c.ack_events(up_to_seq))

    async def log_origin(self) -> str | None:
        """:attr:`LinkKeys.log_origin` of the commissioned lock (from memory, no I/O). A lock
        that counts from 1 again has a new device id and key (docs/protocol.md §7.3.4)."""
        keys = self._link_keys()
        return None if keys is None else keys.log_origin

    async def log_head(self) -> int | None:
        """The ``last_seq`` of a POLL the lock answered after the gateway's last read that
        returned entries (:attr:`PollReplies.head`), else ``None``: the link's own polling
        asks, nothing more goes on the air for it."""
        replies = self._poll_replies()
        return None if replies is None else replies.head

    async def set_time(self, t: datetime) -> None:
        await self._run(lambda c: c.set_time(t))
