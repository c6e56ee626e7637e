"""Read-side filters of the list endpoints: which grants, methods, entrances ... match.

A grant reaches an entrance directly (its ``acs_entrance_ids`` extension field) or through a
space it names in ``space_ids`` that the entrance is in; devices likewise (``device_ids`` or a
space). Filters read objects with ``.get`` and type checks, so injected broken objects are
filtered like the others instead of failing the request.
"""

from __future__ import annotations

from collections.abc import Collection as AbstractCollection
from collections.abc import Iterator
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


def grant_entries(
    state: WorkspaceState, where: GrantFilter, after: int = 0
) -> Iterator[tuple[int, JsonObject]]:
    """Grants matching ``where`` after sequence number ``after``, in creation order."""
    for seq, _, grant in state.access_grants.keyed_after(after):
        if where.matches(state, grant):
            yield seq, grant


def method_entries(
    state: WorkspaceState, where: GrantFilter, after: int = 0
) -> Iterator[tuple[int, JsonObject]]:
    """Access methods of the grants matching ``where``, after ``after``, in creation order."""
    links = state.method_grant
    verdicts: dict[str, bool] = {}
    for seq, key, method in state.access_methods.keyed_after(after):
        grant_id = links.get(key)
        if grant_id is None:
            continue
        if grant_id not in verdicts:
            grant = state.access_grants.get(grant_id)
            verdicts[grant_id] = grant is not None and where.matches(state, grant)
        if verdicts[grant_id]:
            yield seq, method


def entrance_entries(
    state: WorkspaceState,
    *,
    ids: AbstractCollection[str] | None,
    space_id: str | None,
    after: int = 0,
) -> Iterator[tuple[int, JsonObject]]:
    for seq, _, e in state.acs_entrances.keyed_after(after):
        if (ids is None or e.get("acs_entrance_id") in ids) and (
            space_id is None or space_id in str_list(e, "space_ids")
        ):
            yield seq, e


def device_entries(
    state: WorkspaceState,
    *,
    ids: AbstractCollection[str] | None,
    space_id: str | None,
    after: int = 0,
) -> Iterator[tuple[int, JsonObject]]:
    for seq, _, d in state.devices.keyed_after(after):
        if (ids is None or d.get("device_id") in ids) and (
            space_id is None or space_id in str_list(d, "space_ids")
        ):
            yield seq, d
