"""End-to-end authorisation of commands: Ed25519 signatures by operators the gateway trusts.

A broker is shared infrastructure, so whoever can publish on a request topic is not trusted to
open doors. Commands that change state carry ``auth = {operator, ts, nonce, sig}``; ``sig`` is
Ed25519 over :func:`signing_message`::

    b"lockgate-command-v1\\n" + canonical_json({
        "args": <args as sent>, "command": <name>, "gateway_id": <gateway>,
        "nonce": <nonce>, "topic": <the request topic>, "ts": <ms since epoch>})

``canonical_json`` is JSON with sorted keys, no whitespace, UTF-8 (RFC 8785 for arguments made
of strings, integers, booleans and null, which is all the commands take). Binding the gateway
and the topic means a signature for one gateway or command is worthless for another.

Replays are refused without trusting the wall clock. A command is ``stale`` when its ``ts`` is
further than ``max_age`` from the gateway's clock, and ``replayed`` when its ``(operator, nonce)``
is in the nonce cache or its ``ts`` is not above that operator's *floor*. Nonces leave the cache
by **monotonic** age (``max_age`` after they were accepted, however the wall clock moved), and
as one leaves, its ``ts`` raises the operator's floor — a live high-water mark. So a command
recorded off the broker is refused for ever: while its nonce is cached by the nonce, afterwards
by the floor, even when the wall clock (NTP, a spoofed SNTP answer) steps back to make its
``ts`` look fresh again. The highest ``ts`` accepted from each operator is persisted before an
accepted command runs (:meth:`Authoriser.record`) and is the floor after a restart, when the
cache starts empty.

The operator keys file (TOML)::

    [[operator]]
    name = "alice"
    public_key = "<base64 of the 32-byte raw Ed25519 public key>"
    role = "operator"          # viewer | operator | admin
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.mqtt.payloads import Auth, CommandError, ErrorCode, JsonObject

log = logging.getLogger(__name__)

DOMAIN = b"lockgate-command-v1\n"
MAX_NONCES = 10_000
FLOOR_KEY = "mqtt.auth_floor."


class Role(enum.IntEnum):
    """Each role may do what the ones below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    public_key: Ed25519PublicKey
    _verifier: VerifyKey = field(init=False, repr=False, compare=False)
    """The same key in libsodium's form, made once."""

    def __post_init__(self) -> None:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "_verifier", VerifyKey(raw))

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` is this operator's over
        ``message`` (libsodium: strict about encodings, and about half the time of the same
        check through OpenSSL, measured here)."""
        try:
            self._verifier.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            raise InvalidSignature from None


class OperatorKeysError(Exception):
    """The operator keys file cannot be used; the message names the file and the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64)]
    public_key: str
    role: Literal["viewer", "operator", "admin"]


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    operator: list[_Entry] = Field(default_factory=list)


def public_key_from_b64(value: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:
        raise ValueError("public_key must be the 32-byte raw Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_operator_keys(path: Path) -> dict[str, Operator]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
        parsed = _File.model_validate(data)
    except OSError as err:
        raise OperatorKeysError(f"{path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise OperatorKeysError(f"{path}: {err}") from None
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OperatorKeysError(f"{path}: {where}: {first['msg']}") from None
    operators: dict[str, Operator] = {}
    for i, entry in enumerate(parsed.operator):
        if entry.name in operators:
            raise OperatorKeysError(f"{path}: operator.{i}: name {entry.name!r} appears twice")
        try:
            key = public_key_from_b64(entry.public_key)
        except ValueError as err:
            raise OperatorKeysError(f"{path}: operator.{i}.public_key: {err}") from None
        operators[entry.name] = Operator(entry.name, Role[entry.role.upper()], key)
    return operators


# --- signing (shared with lockgate ctl) -----------------------------------------------------
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""Made once: ``json.dumps`` with options makes an encoder on every call."""


def canonical_json(value: object) -> bytes:
    return _CANONICAL.encode(value).encode("utf-8")


def signing_message(
    command: str, args: JsonObject, ts: int, nonce: str, gateway_id: str, topic: str
) -> bytes:
    return DOMAIN + canonical_json(
        {
            "args": args,
            "command": command,
            "gateway_id": gateway_id,
            "nonce": nonce,
            "topic": topic,
            "ts": ts,
        }
    )


def new_nonce() -> str:
    return base64.urlsafe_b64encode(os.urandom(18)).decode().rstrip("=")


def sign(
    key: Ed25519PrivateKey,
    operator: str,
    command: str,
    args: JsonObject,
    *,
    gateway_id: str,
    topic: str,
    ts: int,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The ``auth`` object of a request."""
    nonce = nonce or new_nonce()
    sig = key.sign(signing_message(command, args, ts, nonce, gateway_id, topic))
    return {"operator": operator, "ts": ts, "nonce": nonce, "sig": base64.b64encode(sig).decode()}


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or the base64 of its 32 raw bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(data, password=None)
    else:
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the private key is neither PEM nor base64") from None
        key = Ed25519PrivateKey.from_private_bytes(raw)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("the private key is not an Ed25519 key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- verifying ------------------------------------------------------------------------------
class FloorStore(Protocol):
    """Where the per-operator timestamp floors persist (the store's ``meta`` fits)."""

    def get(self, key: str) -> str | None: ...

    async def raise_to(self, values: Mapping[str, int]) -> None:
        """Raise each key to at least its value, durably; returns once committed."""
        ...


class Authoriser:
    def __init__(
        self,
        operators: dict[str, Operator],
        gateway_id: str,
        floors: FloorStore,
        now: Callable[[], datetime],
        *,
        max_age_s: float,
        max_nonces: int = MAX_NONCES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._operators = operators
        self._gateway_id = gateway_id
        self._floors = floors
        self._now = now
        self._monotonic = monotonic
        self._max_age_s = max_age_s
        self._max_age_ms = int(max_age_s * 1000)
        self._max_nonces = max_nonces
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}
        """(operator, nonce) -> (ts, monotonic time accepted), oldest first."""
        self._live_floor: dict[str, int] = {}
        self._stored: dict[str, int] = {}
        """Per operator, the highest ``ts`` known to be on disk."""
        self._unsaved: dict[str, int] = {}
        """Per operator, a higher ``ts`` accepted and not yet on disk."""
        self._accepted = 0
        """Signed commands accepted so far."""
        self._durable = 0
        """Of those, how many have their ``ts`` on disk (:meth:`record`)."""
        self._writing: asyncio.Task[None] | None = None

    @property
    def operators(self) -> dict[str, Operator]:
        return self._operators

    def floor(self, name: str) -> int:
        """The ``ts`` a command from ``name`` must be above (-1: none accepted yet)."""
        self._expire()
        return self._floor(name)

    def check(
        self,
        command: str,
        args: JsonObject,
        auth: Auth | None,
        topic: str,
        needed: Role | None,
        *,
        accept: Callable[[Auth | None], None] | None = None,
    ) -> Operator | None:
        """The operator who signed, or ``None`` for an unsigned command that needs no role.

        Raises :class:`CommandError` (``unauthorised``, ``forbidden``, ``stale``, ``replayed``,
        ``rate_limited``). ``accept`` is a last check (clock trust, rate limits, opening sealed
        arguments) run once all of these passed; it may raise too. Records the nonce only when
        the command is accepted: a refused command changes nothing. The command's ``ts`` is
        claimed at once, in memory (the same command is refused from now on); await
        :meth:`record` before running the command, so that a restart refuses it too.
        """
        if auth is None:
            if needed is None:
                if accept is not None:
                    accept(None)
                return None
            raise CommandError(
                ErrorCode.UNAUTHORISED, f"{command} must be signed by an operator key"
            )
        operator = self._operators.get(auth.operator)
        if operator is None:
            raise CommandError(ErrorCode.UNAUTHORISED, "unknown operator or bad signature")
        message = signing_message(command, args, auth.ts, auth.nonce, self._gateway_id, topic)
        try:
            operator.verify(auth.signature(), message)
        except InvalidSignature:
            raise CommandError(
                ErrorCode.UNAUTHORISED, "unknown operator or bad signature"
            ) from None
        if needed is not None and operator.role < needed:
            raise CommandError(
                ErrorCode.FORBIDDEN,
                f"operator {operator.name!r} ({operator.role.name.lower()}) may not {command}; "
                f"needs {needed.name.lower()}",
            )
        now_ms = int(self._now().timestamp() * 1000)
        if abs(now_ms - auth.ts) > self._max_age_ms:
            raise CommandError(
                ErrorCode.STALE,
                f"timestamp is {(now_ms - auth.ts) / 1000:.1f}s from the gateway's clock "
                f"(limit {self._max_age_ms / 1000:.0f}s)",
            )
        self._expire()
        key = (operator.name, auth.nonce)
        if key in self._seen or auth.ts <= self._floor(operator.name):
            raise CommandError(ErrorCode.REPLAYED, "this command was already received")
        if len(self._seen) >= self._max_nonces:
            raise CommandError(ErrorCode.RATE_LIMITED, "too many signed commands; try later")
        if accept is not None:
            accept(auth)
        self._seen[key] = (auth.ts, self._monotonic())
        self._accepted += 1
        if auth.ts > max(self._stored[operator.name], self._unsaved.get(operator.name, -1)):
            self._unsaved[operator.name] = auth.ts
        return operator

    async def record(self) -> None:
        """Returns once the ``ts`` of every command accepted so far is on disk (the floor a
        restart starts from); raises what the write raised (``StoreFullError``: the disk is
        full), and then the command must not run. Commands accepted while a write is under
        way share the next one (one commit for them all). Cancelling the caller leaves the
        write going on."""
        target = self._accepted
        while self._durable < target:
            await asyncio.shield(self._writer())

    def _writer(self) -> asyncio.Task[None]:
        """The write under way (every caller waits for it first), or a new one."""
        task = self._writing
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._write(), name="mqtt-auth-floors"
            )
            task.add_done_callback(_written)
            self._writing = task
        return task

    async def _write(self) -> None:
        upto = self._accepted
        batch, self._unsaved = self._unsaved, {}
        if batch:
            try:
                await self._floors.raise_to({FLOOR_KEY + n: ts for n, ts in batch.items()})
            except BaseException:
                for name, ts in batch.items():  # still to write: the next call retries
                    if ts > self._unsaved.get(name, -1):
                        self._unsaved[name] = ts
                raise
            for name, ts in batch.items():
                self._stored[name] = max(self._stored[name], ts)
        self._durable = max(self._durable, upto)

    def _floor(self, name: str) -> int:
        floor = self._live_floor.get(name)
        if floor is None:
            stored = self._floors.get(FLOOR_KEY + name)
            floor = int(stored) if stored else -1
            self._live_floor[name] = self._stored[name] = floor
        return floor

    def _expire(self) -> None:
        """Forget nonces accepted ``max_age`` ago (monotonic); their ``ts`` raise the floor."""
        oldest = self._monotonic() - self._max_age_s
        while self._seen:
            key, (ts, accepted) = next(iter(self._seen.items()))
            if accepted > oldest:
                break
            del self._seen[key]
            name = key[0]
            if ts > self._floor(name):
                self._live_floor[name] = ts


def _written(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (err := task.exception()) is not None:
        # Its callers were told (their commands refused); the floors stay unsaved and the
        # next accepted command writes them.
        log.debug("operators' command floors not written: %s", err)
