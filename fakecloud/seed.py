"""Loading a workspace from a JSON seed file.

Seed format (every section optional; ids may be given, or are generated)::

    {
      "workspace_id": "<uuid>",
      "spaces": [{"space_id", "name", "space_key", "display_name", "extra"}],
      "acs_entrances": [{"acs_entrance_id", "display_name", "space_ids": [...], "extra"}],
      "devices": [{"device_id", "display_name", "space_ids": [...], "device_type", "extra"}],
      "user_identities": [{"user_identity_id", "full_name", "email_address", "phone_number",
                           "user_identity_key", "extra"}],
      "access_grants": [{
        "access_grant_id", "user_identity_id", "space_ids", "acs_entrance_ids", "device_ids",
        "name", "access_grant_key", "reservation_key",
        "starts_at": "<ISO 8601>" | "starts_in_s": <seconds from load time, may be negative>,
        "ends_at": "<ISO 8601>" | null | "ends_in_s": <seconds from load time>,
        "issued": true,
        "requested_access_methods": [{"mode": "code" | "card" | "mobile_key" | "cloud_key",
            "code", "card_number", "display_name", "access_method_id", "instant_key_url",
            "extra"}],
        "extra": {...}
      }]
    }

``name`` (spaces) and ``display_name`` (entrances, devices) are required. A grant starts now
unless ``starts_at``/``starts_in_s`` say otherwise, and has no end unless ``ends_at``/
``ends_in_s`` give one. ``extra`` fields are merged into the served object as they are.
Objects are created in the order above, so references must point to objects listed earlier.
Unknown keys are refused (:class:`SeedError`), to catch typos.
"""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fakecloud.errors import ApiError
from fakecloud.json_types import JsonObject
from fakecloud.state import WorkspaceState
from fakecloud.timestamps import parse_iso

DEMO_SEED = Path(__file__).parent / "seeds" / "demo.json"

_SPACE_KEYS = {"space_id", "name", "space_key", "display_name", "extra"}
_ENTRANCE_KEYS = {"acs_entrance_id", "display_name", "space_ids", "extra"}
_DEVICE_KEYS = {"device_id", "display_name", "space_ids", "device_type", "extra"}
_USER_KEYS = {
    "user_identity_id",
    "full_name",
    "email_address",
    "phone_number",
    "user_identity_key",
    "extra",
}
_GRANT_KEYS = {
    "access_grant_id",
    "user_identity_id",
    "space_ids",
    "acs_entrance_ids",
    "device_ids",
    "name",
    "access_grant_key",
    "reservation_key",
    "starts_at",
    "starts_in_s",
    "ends_at",
    "ends_in_s",
    "issued",
    "requested_access_methods",
    "extra",
}
_METHOD_KEYS = {
    "mode",
    "code",
    "card_number",
    "display_name",
    "access_method_id",
    "instant_key_url",
    "extra",
}
_SECTIONS = {"workspace_id", "spaces", "acs_entrances", "devices", "user_identities"}


class SeedError(ValueError):
    """A seed that cannot be loaded; the message names the object at fault."""


def read_seed(path: str | Path) -> JsonObject:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SeedError(f"{path}: a seed must be a JSON object")
    return data


def state_from_seed(
    seed: Mapping[str, Any] | str | Path | None,
    *,
    now: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> WorkspaceState:
    """A new workspace filled from ``seed`` (a mapping, a path, or ``None`` for empty)."""
    data = read_seed(seed) if isinstance(seed, str | Path) else dict(seed or {})
    workspace_id = data.get("workspace_id")
    if workspace_id is not None and not isinstance(workspace_id, str):
        raise SeedError("workspace_id must be a string")
    state = WorkspaceState(workspace_id=workspace_id, now=now, rng=rng)
    load_seed(state, data)
    return state


def load_seed(state: WorkspaceState, seed: Mapping[str, Any]) -> None:
    """Add the seed's objects to ``state`` (see the module docstring for the format)."""
    unknown = set(seed) - _SECTIONS - {"access_grants"}
    if unknown:
        raise SeedError(f"unknown seed sections: {sorted(unknown)}")
    adders: list[tuple[str, set[str], Callable[..., JsonObject]]] = [
        ("spaces", _SPACE_KEYS, state.add_space),
        ("acs_entrances", _ENTRANCE_KEYS, state.add_acs_entrance),
        ("devices", _DEVICE_KEYS, state.add_device),
        ("user_identities", _USER_KEYS, state.add_user_identity),
    ]
    for section, allowed, add in adders:
        for index, spec in enumerate(_items(seed, section)):
            where = f"{section}[{index}]"
            try:
                add(**dict(_checked(spec, allowed, where)))
            except (ApiError, TypeError) as err:
                raise SeedError(f"{where}: {err}") from err
    with _bulk():
        for index, spec in enumerate(_items(seed, "access_grants")):
            where = f"access_grants[{index}]"
            try:
                state.grants.create(**grant_kwargs(spec, state.now(), where=where))
            except (ApiError, TypeError) as err:
                raise SeedError(f"{where}: {err}") from err


@contextmanager
def _bulk() -> Iterator[None]:
    """No cyclic garbage collection while a large seed is built: every object made here lives
    on, and collecting the growing heap again and again would cost more than the seeding."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def grant_kwargs(spec: Mapping[str, Any], now: datetime, *, where: str = "grant") -> JsonObject:
    """Arguments of :meth:`GrantOps.create` from a seed-style grant ``spec``."""
    kwargs = dict(_checked(spec, _GRANT_KEYS, where))
    methods = kwargs.get("requested_access_methods", [])
    if not isinstance(methods, list):
        raise SeedError(f"{where}: requested_access_methods must be a list")
    kwargs["requested_access_methods"] = [
        _checked(m, _METHOD_KEYS, f"{where}.requested_access_methods[{i}]")
        for i, m in enumerate(methods)
    ]
    for name in ("starts", "ends"):
        offset = kwargs.pop(f"{name}_in_s", None)
        stamp = kwargs.pop(f"{name}_at", None)
        if offset is not None and stamp is not None:
            raise SeedError(f"{where}: give {name}_at or {name}_in_s, not both")
        if offset is not None:
            if not isinstance(offset, int | float) or isinstance(offset, bool):
                raise SeedError(f"{where}: {name}_in_s must be a number")
            kwargs[f"{name}_at"] = now + timedelta(seconds=offset)
        elif stamp is not None:
            if not isinstance(stamp, str):
                raise SeedError(f"{where}: {name}_at must be an ISO 8601 string")
            kwargs[f"{name}_at"] = parse_iso(stamp, field=f"{name}_at")
    if "issued" in kwargs:
        kwargs["issue"] = bool(kwargs.pop("issued"))
    return kwargs


def _items(seed: Mapping[str, Any], section: str) -> list[Any]:
    items = seed.get(section, [])
    if not isinstance(items, list):
        raise SeedError(f"{section} must be a list")
    return items


def _checked(spec: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise SeedError(f"{where}: must be an object")
    unknown = set(spec) - allowed
    if unknown:
        raise SeedError(f"{where}: unknown keys {sorted(unknown)}")
    return spec
