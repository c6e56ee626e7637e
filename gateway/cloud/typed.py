"""The fast reading of Seam's grants and access methods: msgspec structs, checked in C.

Reading 40,000 objects with the pydantic models of :mod:`gateway.cloud.models` cost more than
decoding their JSON; :func:`msgspec.convert` into these structs checks the same fields at a
fraction of it. The structs accept a strict subset of what the pydantic models accept, with
the same values: timestamps are read only in the one RFC 3339 form Seam writes (where the two
parsers agree to the microsecond; msgspec rounds digits beyond it, pydantic cuts them), and
anything else (a lax bool, another time format, a malformed field) returns ``None``, so the
caller reads that object with the pydantic model, which gives the same record or the exact
error the operator sees. Unknown fields are ignored here; the raw object keeps them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1)]

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    re.ASCII,
)
"""The one form read here (the offset in range: ``fromisoformat`` would take ``+01:75``)."""


class FastGrant(msgspec.Struct, frozen=True, gc=False):
    access_grant_id: Id
    starts_at: str | None = None
    ends_at: str | None = None
    space_ids: list[str] = []
    access_method_ids: list[str] = []
    user_identity_id: str | None = None
    display_name: str = ""
    acs_entrance_ids: list[str] = []
    device_ids: list[str] = []
    errors: list[Any] = []
    warnings: list[Any] = []
    pending_mutations: list[Any] = []


class FastMobileKey(msgspec.Struct, frozen=True, gc=False):
    public_key: str


class FastMethod(msgspec.Struct, frozen=True, gc=False):
    access_method_id: Id
    mode: str
    display_name: str = ""
    code: str | None = None
    card_number: str | None = None
    mobile_key: FastMobileKey | None = None
    is_issued: bool | None = None
    errors: list[Any] = []
    warnings: list[Any] = []
    pending_mutations: list[Any] = []


def fast_grant(raw: Any) -> FastGrant | None:
    """``raw`` as a :class:`FastGrant`, or ``None``: read it with the pydantic model."""
    return _fast(raw, FastGrant)


def fast_method(raw: Any) -> FastMethod | None:
    """``raw`` as a :class:`FastMethod`, or ``None``: read it with the pydantic model."""
    return _fast(raw, FastMethod)


S = TypeVar("S", bound=msgspec.Struct)


def _fast(raw: Any, struct: type[S]) -> S | None:
    if type(raw) is not dict:
        return None
    try:
        return msgspec.convert(raw, struct)
    except msgspec.ValidationError:
        return None
    try:
        return msgspec.convert(raw, FastMethod)
    except msgspec.ValidationError:
        return None


class NotFast(Exception):
    """A field the fast reading leaves to the pydantic model."""


def timestamp(text: str | None) -> datetime | None:
    """A timestamp in Seam's RFC 3339 form; :class:`NotFast` for any other text."""
    if text is None:
        return None
    if _RFC3339.fullmatch(text) is None:
        raise NotFast
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise NotFast from None
