"""Read-side filters of the list endpoints: which grants, methods, entrances ... match.

A grant reaches an entrance directly (its ``acs_entrance_ids`` extension field) or through a
space it names in ``space_ids`` that the entrance is in; devices likewise (``device_ids`` or a
space). Filters read objects with ``.get`` and type checks, so injected broken objects are
filtered like the others instead of failing the request.
"""

from __future__ import annotations

from collections.abc import Collection as AbstractCollection
from dataclasses import dataclass

from fakecloud.json_types import JsonObject
from fakecloud.state import WorkspaceState


def str_list(obj: JsonObject, key: str) -> list[str]:
    value = obj.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def grant_entrance_ids(state: WorkspaceState, grant: JsonObject) -> set[str]:
    spaces = set(str_list(grant, "space_ids"))
    found = set(str_list(grant, "acs_entrance_ids"))
    for key, entrance in state.acs_entrances.items():
        if spaces.intersection(str_list(entrance, "space_ids")):
            found.add(key)
    return found


def grant_device_ids(state: WorkspaceState, grant: JsonObject) -> set[str]:
    spaces = set(str_list(grant, "space_ids"))
    found = set(str_list(grant, "device_ids"))
    for key, device in state.devices.items():
        if spaces.intersection(str_list(device, "space_ids")):
            found.add(key)
    return found


def grant_space_ids(state: WorkspaceState, grant: JsonObject) -> set[str]:
    """Spaces named by the grant, plus the spaces of the entrances it names directly."""
    found = set(str_list(grant, "space_ids"))
    for entrance_id in str_list(grant, "acs_entrance_ids"):
        entrance = state.acs_entrances.get(entrance_id)
        if entrance is not None:
            found.update(str_list(entrance, "space_ids"))
    return found


_ANY = object()


@dataclass(frozen=True, slots=True)
class GrantFilter:
    """Filters of ``/access_grants/list`` and ``/access_methods/list``; ``None`` = not given."""

    access_grant_ids: AbstractCollection[str] | None = None
    space_id: str | None = None
    acs_entrance_id: str | None = None
    device_id: str | None = None
    user_identity_id: str | None = None
    reservation_key: str | None = None
    access_grant_key: object = _ANY
    """A key, ``None`` for "grants without a key", or unset (any)."""

    def matches(self, state: WorkspaceState, grant: JsonObject) -> bool:
        checks = (
            self.access_grant_ids is None or grant.get("access_grant_id") in self.access_grant_ids,
            self.user_identity_id is None or grant.get("user_identity_id") == self.user_identity_id,
            self.reservation_key is None or grant.get("reservation_key") == self.reservation_key,
            self.access_grant_key is _ANY or grant.get("access_grant_key") == self.access_grant_key,
        )
        if not all(checks):
            return False
        if self.space_id is not None and self.space_id not in grant_space_ids(state, grant):
            return False
        entrance = self.acs_entrance_id
        if entrance is not None and entrance not in grant_entrance_ids(state, grant):
            return False
        device = self.device_id
        return device is None or device in grant_device_ids(state, grant)


def any_key() -> object:
    """The ``access_grant_key`` value meaning "not filtered"."""
    return _ANY


def grant_entries(state: WorkspaceState, where: GrantFilter) -> list[tuple[int, JsonObject]]:
    return [(seq, g) for seq, g in state.access_grants.entries() if where.matches(state, g)]


def method_entries(state: WorkspaceState, where: GrantFilter) -> list[tuple[int, JsonObject]]:
    """Access methods of the grants matching ``where``, in creation order."""
    grant_keys = {key for key, grant in state.access_grants.items() if where.matches(state, grant)}
    links = state.method_grant
    return [
        (seq, method)
        for seq, key, method in state.access_methods.keyed_entries()
        if links.get(key) in grant_keys
    ]


def entrance_entries(
    state: WorkspaceState, *, ids: AbstractCollection[str] | None, space_id: str | None
) -> list[tuple[int, JsonObject]]:
    return [
        (seq, e)
        for seq, e in state.acs_entrances.entries()
        if (ids is None or e.get("acs_entrance_id") in ids)
        and (space_id is None or space_id in str_list(e, "space_ids"))
    ]


def device_entries(
    state: WorkspaceState, *, ids: AbstractCollection[str] | None, space_id: str | None
) -> list[tuple[int, JsonObject]]:
    return [
        (seq, d)
        for seq, d in state.devices.entries()
        if (ids is None or d.get("device_id") in ids)
        and (space_id is None or space_id in str_list(d, "space_ids"))
    ]
