"""Seam's objects as the gateway reads them: tolerant of unknown fields, strict where it matters.

Each model keeps fields it does not know (``extra="allow"``); :func:`raw_without_secrets` stores
the whole object minus its secrets, so nothing the cloud sends is lost and no PIN lands in the
plain-text part of the store. A malformed object becomes a sync issue for that object only.

Extension fields (Lockgate's, alongside Seam's public ones, which stay as they are; the list,
with why and what happens without them, is in docs/cloud.md): ``acs_entrance_ids`` and
``device_ids`` on a grant (what it was created for), ``card_number`` on a ``card`` access
method, ``mobile_key.public_key`` on a ``mobile_key`` access method. A method that needs one
and lacks it says "extension field missing".

Seam's own states are read too: ``is_issued``, and the ``errors``, ``warnings`` and
``pending_mutations`` of grants and methods become :class:`~gateway.models.SeamNote` entries.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.cloud.typed import FastGrant, FastMethod, NotFast, fast_grant, fast_method, timestamp
from gateway.models import AccessMethod, Grant, SeamNote

PUBLIC_KEY_BYTES = 32

SECRET_FIELDS = frozenset(
    {"code", "card_number", "mobile_key", "client_session_token", "instant_key_url"}
)
"""Never stored in plain text: PINs, card numbers, key material, and bearer URLs/tokens."""


NOTE_MESSAGE_CHARS = 200

EXTENSION_FIELDS: dict[str, str] = {
    "card": "card_number",
    "mobile_key": "mobile_key.public_key",
}
"""The Lockgate extension field a method of this mode needs before it can reach a lock."""


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
    errors: list[Any] = []
    warnings: list[Any] = []
    pending_mutations: list[Any] = []


class CloudMobileKey(_CloudModel):
    public_key: str
    """Base64 of the phone's raw 32-byte Ed25519 public key (see docs/mobile-keys.md)."""

    @field_validator("public_key")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_public_key(value)


def canonical_public_key(value: str) -> str:
    """Standard or URL-safe base64, padding optional, becomes standard padded base64: locks
    and the validator match keys by this exact text."""
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
    is_issued: bool | None = None
    errors: list[Any] = []
    warnings: list[Any] = []
    pending_mutations: list[Any] = []


class CloudEntrance(_CloudModel):
    acs_entrance_id: str = Field(min_length=1)
    space_ids: list[str] = []


def _aware(t: datetime | None) -> datetime | None:
    """The time in UTC (as the store gives it back), with the standard library's UTC zone
    (the parser's own zone objects make every comparison and format several times slower);
    a time without a zone is refused."""
    if t is None or t.tzinfo is UTC:
        return t
    offset = t.utcoffset()
    if offset is None:
        raise ValueError("timestamp without a timezone")
    return t.astimezone(UTC) if offset else t.replace(tzinfo=UTC)


def _shared(text: str | None) -> str | None:
    """One string object for text that repeats across thousands of records (a user's id on
    each of their grants; modes and display names are interned the same way)."""
    return sys.intern(text) if text else text


@functools.lru_cache(maxsize=4096)
def _id_set(ids: tuple[str, ...]) -> frozenset[str]:
    """One shared set per distinct list of ids: 50,000 grants name a few dozen spaces, and a
    set per grant per field would be most of their memory."""
    return frozenset(ids)


def parse_grant(raw: Any) -> tuple[Grant | None, str | None]:
    """A grant, or ``(None, problem)`` when even its id cannot be read."""
    fast = fast_grant(raw)
    if fast is not None:
        try:
            return _grant(fast, _aware(timestamp(fast.starts_at)), _aware(timestamp(fast.ends_at)))
        except (NotFast, ValueError):
            pass  # read by the pydantic model, which says what is wrong with it
    return parse_grant_checked(raw)


def parse_grant_checked(raw: Any) -> tuple[Grant | None, str | None]:
    """:func:`parse_grant` through the pydantic model alone (the fast reading's reference)."""
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
    return _grant(g, starts, ends)


def _grant(
    g: CloudGrant | FastGrant, starts: datetime | None, ends: datetime | None
) -> tuple[Grant, str | None]:
    problem: str | None = None
    if starts is not None and ends is not None and ends <= starts:
        problem = "ends_at is not after starts_at"
    return (
        Grant(
            grant_id=g.access_grant_id,
            starts_at=starts,
            ends_at=ends,
            space_ids=_id_set(tuple(g.space_ids)),
            entrance_ids=_id_set(tuple(g.acs_entrance_ids)),
            device_ids=_id_set(tuple(g.device_ids)),
            user_identity_id=_shared(g.user_identity_id),
            display_name=sys.intern(g.display_name),
            problem=problem,
            seam_notes=seam_notes(g.errors, g.warnings, g.pending_mutations),
        ),
        problem,
    )


def parse_method(raw: Any, grant_id: str | None) -> tuple[AccessMethod | None, str | None]:
    fast = fast_method(raw)
    if fast is not None:
        try:
            key = fast.mobile_key
            public_key = None if key is None else canonical_public_key(key.public_key)
        except ValueError:
            pass  # read by the pydantic model, which says what is wrong with it
        else:
            return _method(fast, public_key, grant_id)
    return parse_method_checked(raw, grant_id)


def parse_method_checked(raw: Any, grant_id: str | None) -> tuple[AccessMethod | None, str | None]:
    """:func:`parse_method` through the pydantic model alone (the fast reading's reference)."""
    try:
        m = CloudAccessMethod.model_validate(raw)
    except ValidationError as err:
        mid = raw.get("access_method_id") if isinstance(raw, dict) else None
        why = f"invalid access method: {_short(err)}"
        if isinstance(mid, str) and mid:
            mode = raw.get("mode") if isinstance(raw.get("mode"), str) else "unknown"
            return AccessMethod(mid, grant_id, str(mode), problem=why), why
        return None, why
    return _method(m, m.mobile_key.public_key if m.mobile_key else None, grant_id)


def _method(
    m: CloudAccessMethod | FastMethod, public_key: str | None, grant_id: str | None
) -> tuple[AccessMethod, str | None]:
    """The record of a method read (``public_key``: its mobile key, canonical)."""
    secret: bytes | None = None
    problem: str | None = None
    issued = m.is_issued is not False
    if m.mode == "code":
        secret = m.code.encode() if m.code else None
        if secret is None and issued:
            problem = "code access method has no code"
    elif m.mode == "card":
        secret = m.card_number.encode() if m.card_number else None
    elif m.mode == "mobile_key":
        secret = public_key.encode() if public_key else None
    if secret is None and m.mode in EXTENSION_FIELDS:
        problem = (
            f"{m.mode} access method: extension field missing: {EXTENSION_FIELDS[m.mode]} "
            "(a Lockgate extension that this workspace does not send; see docs/cloud.md)"
        )
    return (
        AccessMethod(
            method_id=m.access_method_id,
            grant_id=grant_id,
            mode=sys.intern(m.mode),
            secret=secret,
            problem=problem,
            display_name=sys.intern(m.display_name),
            issued=issued,
            seam_notes=seam_notes(m.errors, m.warnings, m.pending_mutations),
        ),
        problem,
    )


def seam_notes(
    errors: list[Any], warnings: list[Any], mutations: list[Any]
) -> tuple[SeamNote, ...]:
    """Seam's ``errors``, ``warnings`` and ``pending_mutations`` of one object, in that order.

    Entries without their code field are skipped; messages are cut to a line's length.
    """
    if not (errors or warnings or mutations):
        return ()  # most objects: nothing to read
    notes = []
    for kind, key, items in (
        ("error", "error_code", errors),
        ("warning", "warning_code", warnings),
        ("pending_mutation", "mutation_code", mutations),
    ):
        for item in items:
            code = item.get(key) if isinstance(item, dict) else None
            if isinstance(code, str) and code:
                message = item.get("message")
                text = message[:NOTE_MESSAGE_CHARS] if isinstance(message, str) else ""
                notes.append(SeamNote(kind, code, text))
    return tuple(notes)


def being_deleted(notes: tuple[SeamNote, ...]) -> bool:
    """Seam's ``being_deleted`` warning: the object is on its way out."""
    return bool(notes) and any(n.kind == "warning" and n.code == "being_deleted" for n in notes)


def raw_without_secrets(raw: Any) -> str:
    """The object as JSON with every secret field removed, at any depth (a grant's
    ``requested_access_methods[].code`` repeats the PIN, for one)."""
    if not isinstance(raw, dict):
        return json.dumps({"unreadable": True})
    return _ENCODER.encode(_scrub(raw)).decode()


_ENCODER = msgspec.json.Encoder(order="sorted")

SECRET_CARRIERS = ("requested_access_methods",)
"""Fields holding a list of objects in which Seam repeats secret fields: a grant's requested
access methods carry their PINs and card numbers."""

_SECRET_KEY = re.compile(
    b'"(?:' + b"|".join(re.escape(f.encode()) for f in sorted(SECRET_FIELDS)) + b')":'
)
"""A secret field as a key in :data:`_ENCODER`'s output. The encoder writes every key as its
JSON string, escaping only ``"``, ``\\`` and control characters, followed by ``:`` with no
space: an object holding a secret field at any depth holds this in its encoding, whatever
escapes the key had in the text it was read from (``"\\u0063ode"`` is decoded to ``code``
and written back as ``"code"``). Text that is not such a key may match too (a key that ends
in ``"code``): that costs a walk, never a secret."""


def scrubbed(raw: Any) -> str:
    """:func:`raw_without_secrets` of an object the caller owns and needs no more as it was:
    its secret fields are deleted in place where Seam puts them (at its top, and in the
    objects listed in :data:`SECRET_CARRIERS`), it is encoded, and the encoding is checked
    for a secret field left anywhere (:data:`_SECRET_KEY`); only then is it walked whole as
    :func:`raw_without_secrets` does. The check is on the text that is stored, so the walk
    is skipped only when that text holds no secret field.

    (A sync's own freshly decoded objects: the walk copied each. Measured on a site's
    10,000 grants and 30,000 methods, 25 runs of each interleaved, three times under load
    2.8: the least 143-161 ms against 164-200 ms, the median 192-245 ms against 243-293.)"""
    if type(raw) is not dict:
        return raw_without_secrets(raw)
    secrets = SECRET_FIELDS.intersection
    for key in secrets(raw):
        del raw[key]
    for carrier in SECRET_CARRIERS:
        items = raw.get(carrier)
        if items.__class__ is list:
            for item in items:
                if item.__class__ is dict:
                    for key in secrets(item):
                        del item[key]
    text = _ENCODER.encode(raw)
    if _SECRET_KEY.search(text) is not None:  # a secret field elsewhere: the whole walk
        text = _ENCODER.encode(_scrub(raw))
    return text.decode()


def _scrub(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without its secret fields; only containers are descended into."""
    out = {}
    for key, value in obj.items():
        if key in SECRET_FIELDS:
            continue
        cls = value.__class__
        if cls is dict:
            value = _scrub(value)
        elif cls is list:
            if value:
                value = _scrub_list(value)
        elif value is not None and cls not in _SCALARS:  # a subclass, from another decoder
            if isinstance(value, dict):
                value = _scrub(value)
            elif isinstance(value, list):
                value = _scrub_list(value)
        out[key] = value
    return out


_SCALARS = frozenset({str, int, float, bool})
"""What JSON decodes to besides containers and null: nothing to descend into."""


def _scrub_list(items: list[Any]) -> list[Any]:
    for v in items:
        if isinstance(v, (dict, list)):  # the tuple, not dict | list: faster
            break
    else:
        return items  # no container in it, so no secret field: shared, not copied
    return [
        _scrub(v) if isinstance(v, dict) else _scrub_list(v) if isinstance(v, list) else v
        for v in items
    ]


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
