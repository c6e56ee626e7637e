"""What travels on the wire: the request envelope, the per-command argument models, the
response, and the typed error codes.

Requests (``<root>/request/<command>``)::

    {"transaction": "t-1", "args": {...}, "auth": {"operator", "ts", "nonce", "sig"}}

Responses, whatever happened::

    {"status": "ok" | "error", "data": ..., "error": null | {"code", "message", ...},
     "transaction": "t-1"}

Models are strict pydantic v2: ``"5"`` is not an integer here, unknown fields are refused, and
a refusal names the field (``args.hold_seconds``). Secrets (a PIN to test, a pairing secret)
arrive :class:`Sealed` to the gateway's command key (see :mod:`gateway.mqtt.sealed`); a value
in clear is refused. Once opened they are :class:`~pydantic.SecretStr`, so no ``repr`` or error
message can show them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from gateway.mqtt.sealed import MIN_BLOB_BYTES

JsonObject = dict[str, Any]

MAX_TRANSACTION_CHARS = 128


class ErrorCode(enum.StrEnum):
    UNKNOWN_COMMAND = "unknown_command"
    BAD_PAYLOAD = "bad_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORISED = "unauthorised"
    """No signature, an unknown operator, or a signature that does not verify."""
    FORBIDDEN = "forbidden"
    """A valid signature from an operator whose role does not allow the command."""
    REPLAYED = "replayed"
    STALE = "stale"
    RATE_LIMITED = "rate_limited"
    CLOCK_UNTRUSTED = "clock_untrusted"
    """The gateway cannot trust its clock, and the command moves a door (``unlock``)."""
    BUSY = "busy"
    UNKNOWN_LOCK = "unknown_lock"
    NOT_FOUND = "not_found"
    LOCK_OFFLINE = "lock_offline"
    LOCK_UNAUTHORISED = "lock_unauthorised"
    UNSUPPORTED = "unsupported"
    TIMEOUT = "timeout"
    DRIVER_ERROR = "driver_error"
    CLOUD_UNAVAILABLE = "cloud_unavailable"
    CLOUD_UNAUTHORISED = "cloud_unauthorised"
    CLOUD_ERROR = "cloud_error"
    STORE_FULL = "store_full"
    """The gateway's disk is full: the command's change could not be recorded."""
    INTERNAL_ERROR = "internal_error"


class CommandError(Exception):
    """A command could not be done; becomes the ``error`` object of the response."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        lock_id: str | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.lock_id = lock_id
        self.cause = cause

    def as_dict(self) -> JsonObject:
        out: JsonObject = {"code": self.code.value, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.lock_id is not None:
            out["lock_id"] = self.lock_id
        if self.cause is not None:
            out["cause"] = self.cause
        return out


def bad_payload(err: ValidationError, prefix: str = "") -> CommandError:
    """The first problem of a validation error, with its field path and without the input."""
    first = err.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(p) for p in first["loc"])
    field = f"{prefix}.{path}" if prefix and path else (prefix or path or None)
    extra = len(err.errors()) - 1
    more = f" (and {extra} more)" if extra else ""
    return CommandError(
        ErrorCode.BAD_PAYLOAD, f"{field or 'payload'}: {first['msg']}{more}", field=field
    )


# --- the envelope --------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _b64(value: str, size: int | None, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None
    if size is not None and len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return raw


class Auth(_Strict):
    """An operator's signature over the command (see :mod:`gateway.mqtt.auth`)."""

    operator: Annotated[str, Field(min_length=1, max_length=64)]
    ts: Annotated[int, Field(ge=0)]
    """Milliseconds since the Unix epoch, UTC."""
    nonce: Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    sig: str
    """Base64 of the 64-byte Ed25519 signature."""

    @field_validator("sig")
    @classmethod
    def _sig_is_64_bytes(cls, value: str) -> str:
        _b64(value, 64, "sig")
        return value

    def signature(self) -> bytes:
        return base64.b64decode(self.sig)


class Envelope(_Strict):
    transaction: Any = None
    """A string (up to 128 characters) or an integer, echoed in the response."""
    args: JsonObject = Field(default_factory=dict)
    auth: Auth | None = None

    @field_validator("transaction")
    @classmethod
    def _transaction(cls, value: object) -> object:
        if value is not None and transaction_of({"transaction": value}) is None:
            raise ValueError(f"a string of up to {MAX_TRANSACTION_CHARS} characters or an integer")
        return value


def transaction_of(obj: object) -> str | int | None:
    """Best effort, for echoing in an error response before the envelope validated."""
    if isinstance(obj, dict):
        value = obj.get("transaction")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and len(value) <= MAX_TRANSACTION_CHARS:
            return value
    return None


def transaction_of_bytes(payload: bytes, max_bytes: int) -> str | int | None:
    """The transaction of a raw request, if it is small enough to parse and has one."""
    if len(payload) > max_bytes:
        return None
    try:
        return transaction_of(parse_json(payload))
    except CommandError:
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""Made once: ``json.loads`` with options makes a decoder on every call."""


def parse_json(payload: bytes) -> object:
    """Strict JSON (no NaN or Infinity); raises :class:`CommandError` ``bad_payload``."""
    try:
        return _DECODER.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CommandError(ErrorCode.BAD_PAYLOAD, "payload is not a JSON object") from None


# --- per-command arguments -----------------------------------------------------------------
LockId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class NoArgs(_Strict):
    pass


class LockArgs(_Strict):
    lock_id: LockId


class SyncArgs(_Strict):
    full: bool = False


class UnlockArgs(_Strict):
    lock_id: LockId
    hold_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Relock after this long; omitted: the lock's own default."""


class GrantArgs(_Strict):
    grant_id: Annotated[str, Field(min_length=1, max_length=128)]


MUST_BE_SEALED = "must be sealed to the gateway's command_key"


def _sealed_object(value: object) -> object:
    if not isinstance(value, dict):
        raise PydanticCustomError("sealed", MUST_BE_SEALED)
    return value


class Sealed(_Strict):
    """A secret argument sealed to the gateway (:mod:`gateway.mqtt.sealed`).

    Validation checks the shape only; the router opens it once the request's signature was
    checked (the request's nonce is part of the seal) and hands the handler an opened copy.
    """

    sealed: str
    _opened: SecretStr | None = PrivateAttr(default=None)

    @field_validator("sealed")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        if len(_b64(value, None, "sealed")) < MIN_BLOB_BYTES:
            raise ValueError("sealed is too short")
        return value

    def blob(self) -> bytes:
        return base64.b64decode(self.sealed)

    def opened(self, secret: str) -> Sealed:
        """A copy that carries the opened value."""
        copy = Sealed(sealed=self.sealed)
        copy._opened = SecretStr(secret)
        return copy

    def secret(self) -> SecretStr:
        if self._opened is None:
            raise RuntimeError("a sealed argument was not opened")
        return self._opened


SealedArg = Annotated[Sealed, BeforeValidator(_sealed_object)]
"""A :class:`Sealed` argument; anything but ``{"sealed": ...}`` is refused as not sealed."""


class TestCredentialArgs(_Strict):
    lock_id: LockId
    kind: Literal["code", "card"] = "code"
    secret: SealedArg
    """The PIN or card number to test (1-64 characters), sealed. Never echoed, never logged."""


class CommissionArgs(_Strict):
    lock_id: LockId
    pairing_secret: SealedArg
    """1-256 characters, sealed."""


SEALED_LIMITS: dict[tuple[str, str], int] = {
    ("test_credential", "secret"): 64,
    ("commission", "pairing_secret"): 256,
}
"""The longest opened value of each sealed argument (in characters)."""


class LogLevelArgs(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    logger: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """A logger name (``gateway.mqtt``); omitted: the root logger."""


# --- responses -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Response:
    status: Literal["ok", "error"]
    data: object = None
    error: CommandError | None = None
    transaction: str | int | None = None

    @classmethod
    def ok(cls, data: object, transaction: str | int | None = None) -> Response:
        return cls("ok", data, None, transaction)

    @classmethod
    def fail(cls, error: CommandError, transaction: str | int | None = None) -> Response:
        return cls("error", None, error, transaction)

    def as_dict(self) -> JsonObject:
        out: JsonObject = {
            "status": self.status,
            "data": self.data,
            "error": None if self.error is None else self.error.as_dict(),
        }
        if self.transaction is not None:
            out["transaction"] = self.transaction
        return out

    def encode(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":"), default=str).encode()
