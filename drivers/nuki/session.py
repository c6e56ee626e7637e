"""One conversation with a Nuki lock: requests and the messages that answer them.

The transport (:class:`NukiTransport`) carries whole messages on the lock's two channels (the
pairing characteristic, plain; the user-specific one, sealed); :class:`NukiSession` seals a
command under the authorization's shared key, and collects the lock's messages until the one
that ends the exchange (a Status, or the command's own answer), opening each and turning an
Error Report into :class:`NukiError`. Commands that change something first fetch a challenge
nonce, and carry it with the security PIN.
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from drivers.nuki import crypto
from drivers.nuki import wire as w
from drivers.nuki.wire import Command, ErrorCode, Status


class Channel(enum.Enum):
    PAIRING = "pairing"
    USER = "user"


class NukiTransport(Protocol):
    async def write(self, channel: Channel, data: bytes) -> None: ...

    async def receive(self, channel: Channel, within: float) -> bytes:
        """The next whole message on ``channel``; ``TimeoutError`` after ``within`` s."""
        ...

    def discard(self, channel: Channel) -> None:
        """Forget messages that arrived unasked (a late answer to an abandoned request)."""
        ...


class NukiError(Exception):
    """The lock answered with an Error Report."""

    def __init__(self, code: int, command: int) -> None:
        super().__init__(f"lock error {ErrorCode.name_of(code)} for command 0x{command:04X}")
        self.code = code
        self.command = command


class NukiReplyError(Exception):
    """The lock's answer cannot be read (does not open, bad CRC, not the expected command)."""


class ActionUnconfirmed(Exception):
    """A lock action was sent and no authenticated answer said how it ended: it must not be
    sent again on its own (a second unlatch opens the door twice)."""


@dataclass(frozen=True, slots=True)
class NukiKeys:
    """What the gateway keeps after pairing: its key pair for this lock and the auth id."""

    auth_id: int
    private_key: bytes = field(repr=False)
    lock_public: bytes
    app_id: int

    @property
    def shared_key(self) -> bytes:
        return crypto.shared_key(self.private_key, self.lock_public)

    @property
    def log_origin(self) -> str:
        """The log this pairing reads: the lock's key, the authorization id and the gateway's
        key of this pairing (fingerprints). A factory reset ends every pairing and restarts
        the log (and may hand out the same authorization id again): the gateway's key, new at
        each pairing, tells the pairings apart. A pairing proves all three in every session
        (every answer is sealed under the key they share)."""
        lock = hashlib.sha256(self.lock_public).hexdigest()[:16]
        ours = hashlib.sha256(crypto.public_key(self.private_key)).hexdigest()[:16]
        return f"nuki:{lock}/{self.auth_id}/{ours}"

    _MAGIC = b"NUK1"

    def to_bytes(self) -> bytes:
        return (
            self._MAGIC
            + struct.pack("<II", self.auth_id, self.app_id)
            + self.private_key
            + self.lock_public
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> NukiKeys:
        if len(raw) != 4 + 8 + 64 or not raw.startswith(cls._MAGIC):
            raise ValueError("not a Nuki key record")
        auth_id, app_id = struct.unpack_from("<II", raw, 4)
        return cls(auth_id, raw[12:44], raw[44:76], app_id)


class NukiSession:
    def __init__(
        self,
        transport: NukiTransport,
        keys: NukiKeys,
        *,
        pin: int,
        reply_timeout: float = 5.0,
        rng: crypto.Rng = os.urandom,
    ) -> None:
        self.transport = transport
        self.keys = keys
        self._key = keys.shared_key
        self._pin = pin
        self.reply_timeout = reply_timeout
        self._rng = rng

    @property
    def pin(self) -> int:
        return self._pin

    async def exchange(
        self, command: int, payload: bytes, *, until: Collection[int]
    ) -> list[w.Message]:
        """Send one sealed command; every message up to and including one in ``until``."""
        self.transport.discard(Channel.USER)
        nonce = self._rng(crypto.NONCE_LEN)
        data = w.encode_sealed(self._key, self.keys.auth_id, command, payload, nonce)
        await self.transport.write(Channel.USER, data)
        got: list[w.Message] = []
        while True:
            raw = await self.transport.receive(Channel.USER, self.reply_timeout)
            msg = self._open(raw)
            _raise_error_report(msg)
            got.append(msg)
            if msg.command in until:
                return got

    def _open(self, raw: bytes) -> w.Message:
        try:
            header = w.sealed_header(raw)
        except w.WireError:
            try:  # a lock that cannot open our message answers in plain
                msg = w.decode_plain(raw)
            except w.WireError as err:
                raise NukiReplyError(f"unreadable answer: {err}") from err
            if msg.command == Command.ERROR_REPORT:
                return msg
            raise NukiReplyError("a plain answer on the sealed channel") from None
        if header.auth_id != self.keys.auth_id:
            raise NukiReplyError("an answer for another authorization")
        try:
            return w.decode_sealed(self._key, raw)
        except (crypto.OpenError, w.WireError) as err:
            raise NukiReplyError(f"answer does not open: {err}") from err

    async def request(self, wanted: int) -> w.Message:
        """Request Data (0x0001) for ``wanted``; the lock's message of that command."""
        got = await self.exchange(Command.REQUEST_DATA, w.u16(wanted), until=(wanted,))
        return got[-1]

    async def challenge(self) -> bytes:
        msg = await self.request(Command.CHALLENGE)
        if len(msg.payload) != 32:
            raise NukiReplyError("a challenge of the wrong size")
        return msg.payload

    async def secured(
        self, command: int, body: bytes, *, pin: bool = True, until: Collection[int] = ()
    ) -> list[w.Message]:
        """A command with a fresh challenge nonce (and the security PIN), up to Status
        COMPLETE (or a message in ``until``)."""
        nonce = await self.challenge()
        payload = body + nonce + (struct.pack("<H", self._pin) if pin else b"")
        ends = {Command.STATUS, *until}
        got = await self.exchange(command, payload, until=ends)
        if _accepted(got[-1]):  # the lock works on it and sends COMPLETE when done
            got += await self.more(ends)
        return got

    async def more(self, ends: Collection[int]) -> list[w.Message]:
        """Messages after a Status ACCEPTED, up to the one that ends the command."""
        got: list[w.Message] = []
        while True:
            msg = self._open(await self.transport.receive(Channel.USER, self.reply_timeout))
            _raise_error_report(msg)
            got.append(msg)
            if msg.command in ends and not _accepted(msg):
                return got


def _accepted(msg: w.Message) -> bool:
    return msg.command == Command.STATUS and msg.payload[:1] == bytes([Status.ACCEPTED])


def _raise_error_report(msg: w.Message) -> None:
    if msg.command == Command.ERROR_REPORT:
        code = msg.payload[0] if msg.payload else ErrorCode.UNKNOWN
        cmd = struct.unpack_from("<H", msg.payload, 1)[0] if len(msg.payload) >= 3 else 0
        raise NukiError(code, cmd)


async def receive_plain(transport: NukiTransport, within: float) -> w.Message:
    raw = await transport.receive(Channel.PAIRING, within)
    try:
        msg = w.decode_plain(raw)
    except w.WireError as err:
        raise NukiReplyError(f"unreadable pairing message: {err}") from err
    if msg.command == Command.ERROR_REPORT and len(msg.payload) >= 3:
        raise NukiError(msg.payload[0], struct.unpack_from("<H", msg.payload, 1)[0])
    return msg
