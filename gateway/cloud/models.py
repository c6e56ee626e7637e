"""Seam's objects as the gateway reads them: tolerant of unknown fields, strict where it matters.

Each model keeps fields it does not know (``extra="allow"``); :func:`raw_without_secrets` stores
the whole object minus its secrets, so nothing the cloud sends is lost and no PIN lands in the
plain-text part of the store. A malformed object becomes a sync issue for that object only.

Extension fields (Lockgate's, alongside Seam's public ones, which stay as they are):
``acs_entrance_ids`` and ``device_ids`` on a grant (what it was created for), ``card_number``
on a ``card`` access method, ``mobile_key`` on a ``mobile_key`` access method.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.models import AccessMethod, Grant

PUBLIC_KEY_BYTES = 32

SECRET_FIELDS = frozenset(
    {"code", "card_number", "mobile_key", "client_session_token", "instant_key_url"}
)
"""Never stored in plain text: PINs, card numbers, key material, and bearer URLs/tokens."""


class _CloudModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CloudGrant(_CloudModel):
    access_grant_id: str = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    space_ids: list[str] = []
    access_method_ids: list[str] = []
    user_identity_id: str | None = None
    display_name: str = ""
    acs_entrance_ids: list[str] = []
    device_ids: list[str] = []


class CloudMobileKey(_CloudModel):
    public_key: str
    """Base64 of the phone's raw 32-byte Ed25519 public key (see docs/mobile-keys.md)."""

    @field_validator("public_key")
    @classmethod
    def _canonical(cls, value: str) -> str:
        """Standard or URL-safe base64, padding optional, becomes standard padded base64:
        locks and the validator match keys by this exact text."""
        text = value.strip().replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("mobile_key.public_key is not base64") from None
        if len(raw) != PUBLIC_KEY_BYTES:
            raise ValueError("mobile_key.public_key is not a 32-byte Ed25519 key")
        return base64.b64encode(raw).decode("ascii")


class CloudAccessMethod(_CloudModel):
    access_method_id: str = Field(min_length=1)
    mode: str
    display_name: str = ""
    code: str | None = None
    card_number: str | None = None
    mobile_key: CloudMobileKey | None = None


class CloudEntrance(_CloudModel):
    acs_entrance_id: str = Field(min_length=1)
    space_ids: list[str] = []


def _aware(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise ValueError("timestamp without a timezone")
    return t


def parse_grant(raw: Any) -> tuple[Grant | None, str | None]:
    """A grant, or ``(None, problem)`` when even its id cannot be read."""
    try:
        g = CloudGrant.model_validate(raw)
        starts, ends = _aware(g.starts_at), _aware(g.ends_at)
    except (ValidationError, ValueError) as err:
        gid = raw.get("access_grant_id") if isinstance(raw, dict) else None
        why = f"invalid grant: {_short(err)}"
        if isinstance(gid, str) and gid:
            return (
                Grant(
                    grant_id=gid,
                    starts_at=None,
                    ends_at=None,
                    space_ids=_str_set(raw.get("space_ids")),
                    entrance_ids=_str_set(raw.get("acs_entrance_ids")),
                    device_ids=_str_set(raw.get("device_ids")),
                    problem=why,
                ),
                why,
            )
        return None, why
    problem: str | None = None
    if starts is not None and ends is not None and ends <= starts:
        problem = "ends_at is not after starts_at"
    return (
        Grant(
            grant_id=g.access_grant_id,
            starts_at=starts,
            ends_at=ends,
            space_ids=frozenset(g.space_ids),
            entrance_ids=frozenset(g.acs_entrance_ids),
            device_ids=frozenset(g.device_ids),
            user_identity_id=g.user_identity_id,
            display_name=g.display_name,
            problem=problem,
        ),
        problem,
    )


def parse_method(raw: Any, grant_id: str | None) -> tuple[AccessMethod | None, str | None]:
    try:
        m = CloudAccessMethod.model_validate(raw)
    except ValidationError as err:
        mid = raw.get("access_method_id") if isinstance(raw, dict) else None
        why = f"invalid access method: {_short(err)}"
        if isinstance(mid, str) and mid:
            mode = raw.get("mode") if isinstance(raw.get("mode"), str) else "unknown"
            return AccessMethod(mid, grant_id, str(mode), problem=why), why
        return None, why
    secret: bytes | None = None
    problem: str | None = None
    if m.mode == "code":
        secret = m.code.encode() if m.code else None
        if secret is None:
            problem = "code access method has no code yet"
    elif m.mode == "card":
        secret = m.card_number.encode() if m.card_number else None
        if secret is None:
            problem = "card access method has no card_number"
    elif m.mode == "mobile_key":
        secret = m.mobile_key.public_key.encode() if m.mobile_key else None
        if secret is None:
            problem = "mobile_key access method has no mobile_key material"
    return (
        AccessMethod(
            method_id=m.access_method_id,
            grant_id=grant_id,
            mode=m.mode,
            secret=secret,
            problem=problem,
            display_name=m.display_name,
        ),
        problem,
    )


def raw_without_secrets(raw: Any) -> str:
    """The object as JSON with every secret field removed, at any depth (a grant's
    ``requested_access_methods[].code`` repeats the PIN, for one)."""
    if not isinstance(raw, dict):
        return json.dumps({"unreadable": True})
    return json.dumps(_scrub(raw), sort_keys=True)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _str_set(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"{loc}: {first['msg']}" + (
            f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
        )
    return str(err)
