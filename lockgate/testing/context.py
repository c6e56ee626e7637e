"""What a driver needs around it in a test: a context, a key store, credentials that fit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from drivers.base import (
    AccessAnswer,
    AccessRequest,
    Capabilities,
    Credential,
    CredentialKind,
    Decider,
    DriverContext,
    TimeWindow,
)


class MemoryKeyStore:
    """A :class:`~drivers.base.KeyStore` in a dict (the gateway's is encrypted on disk)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def put(self, name: str, value: bytes) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


async def deny_all(request: AccessRequest) -> AccessAnswer:
    return AccessAnswer(allow=False, reason="test_context")


def make_context(
    *,
    now: Callable[[], datetime] | None = None,
    keystore: MemoryKeyStore | None = None,
    decide: Decider = deny_all,
    events_waiting: Callable[[], None] = lambda: None,
) -> DriverContext:
    """A :class:`~drivers.base.DriverContext` like the gateway's, with an in-memory key store."""
    return DriverContext(
        now=now or (lambda: datetime.now(UTC)),
        keystore=keystore or MemoryKeyStore(),
        decide=decide,
        events_waiting=events_waiting,
    )


def content_tag(kind: CredentialKind, secret: bytes, window: TimeWindow | None) -> bytes:
    """An 8-byte tag of a credential's content, as the gateway makes one (there it is keyed)."""
    h = hashlib.sha256(kind.value.encode() + b"\0" + secret)
    if window is not None:
        h.update(repr((window.starts_at, window.ends_at)).encode())
    return h.digest()[:8]


def fitting_code(caps: Capabilities, n: int) -> str:
    """The ``n``-th PIN that fits the lock's code rules (length, alphabet, forbidden
    prefixes), all different."""
    alphabet = caps.code_alphabet
    length = max(caps.code_min_length, 1)
    digits: list[str] = []
    value = n + 1
    while len(digits) < length:
        value, r = divmod(value, len(alphabet))
        digits.append(alphabet[r])
    code = "".join(reversed(digits))
    # Vary the leading symbol too, so codes do not all start alike (some locks refuse that).
    lead = (n * 7 + 3) % len(alphabet)
    code = alphabet[lead] + code[1:] if length > 1 else code
    for shift in range(1, len(alphabet)):  # and keep clear of prefixes the lock refuses
        if not any(code.startswith(p) for p in caps.code_forbidden_prefixes):
            break
        code = alphabet[(lead + shift) % len(alphabet)] + code[1:]
    return code


def code_credential(
    caps: Capabilities, n: int, *, credential_id: str | None = None, code: str | None = None
) -> Credential:
    """A PIN credential for this lock. ``window`` is set only when the lock enforces windows."""
    pin = code if code is not None else fitting_code(caps, n)
    window = TimeWindow(None, None) if caps.enforces_time_windows else None
    secret = pin.encode("ascii")
    return Credential(
        credential_id=credential_id or f"conformance-{n}",
        kind=CredentialKind.CODE,
        secret=secret,
        tag=content_tag(CredentialKind.CODE, secret, window),
        window=window,
    )
