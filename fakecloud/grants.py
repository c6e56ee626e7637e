"""Creating, changing and deleting access grants, with Seam's ``access_grant.*`` events.

``create`` turns each requested access method into an access method (see
:mod:`fakecloud.access_methods`); ``delete`` deletes the grant's access methods too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from fakecloud import objects
from fakecloud.access_methods import checked_request, refresh_instant_key
from fakecloud.errors import InvalidInput, NotFound
from fakecloud.json_types import JsonObject
from fakecloud.timestamps import to_iso

if TYPE_CHECKING:
    from fakecloud.state import WorkspaceState


class Unset(Enum):
    """Marks an argument that was not given (``None`` means "no end time")."""

    UNSET = "unset"


UNSET = Unset.UNSET


class GrantOps:
    """Grant changes on one :class:`WorkspaceState` (reachable as ``state.grants``)."""

    def __init__(self, state: WorkspaceState) -> None:
        self._state = state

    # -- lookups ---------------------------------------------------------------------------
    def get(
        self, access_grant_id: str | None = None, access_grant_key: str | None = None
    ) -> JsonObject:
        """The grant with this id or key (NotFound otherwise)."""
        grants = self._state.access_grants
        if access_grant_id is not None:
            found = grants.get(access_grant_id)
        else:
            found = next((g for g in grants if g.get("access_grant_key") == access_grant_key), None)
        if found is None:
            raise NotFound(f"access_grant {access_grant_id or access_grant_key} not found")
        return found

    def _mutable_grant(self, access_grant_id: str) -> JsonObject:
        grant = self.get(access_grant_id)
        if self._state.is_raw("access_grants", access_grant_id):
            raise InvalidInput(f"access_grant {access_grant_id} is a raw object")
        return grant

    # -- grants ----------------------------------------------------------------------------
    def create(
        self,
        *,
        user_identity_id: str,
        requested_access_methods: Sequence[Mapping[str, Any]],
        space_ids: Sequence[str] = (),
        acs_entrance_ids: Sequence[str] = (),
        device_ids: Sequence[str] = (),
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        name: str | None = None,
        access_grant_key: str | None = None,
        reservation_key: str | None = None,
        access_grant_id: str | None = None,
        issue: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Create a grant and its access methods; log the created/issued events.

        Each requested method is a mapping with ``mode`` and optionally ``code``,
        ``card_number``, ``display_name``, ``access_method_id``, ``instant_key_url``, ``extra``.
        ``issue=False`` leaves the methods unissued (see :meth:`issue_method`).
        """
        state = self._state
        user = state.user_identities.get(user_identity_id)
        if user is None:
            raise NotFound(f"user_identity {user_identity_id} not found")
        for collection, keys in (
            (state.spaces, space_ids),
            (state.acs_entrances, acs_entrance_ids),
            (state.devices, device_ids),
        ):
            for key in keys:
                if key not in collection:
                    raise NotFound(f"{collection.kind} {key} not found")
        requests = [checked_request(item) for item in requested_access_methods]
        wanted_ids = [r["access_method_id"] for r in requests if r.get("access_method_id")]
        if len(set(wanted_ids)) != len(wanted_ids) or any(
            key in state.access_methods for key in wanted_ids
        ):
            raise InvalidInput("access_method_id already in use")
        start = starts_at if starts_at is not None else state.now()
        _check_window(start, ends_at)
        if access_grant_key is not None and any(
            g.get("access_grant_key") == access_grant_key for g in state.access_grants
        ):
            raise InvalidInput(f"access_grant_key {access_grant_key!r} already in use")
        if access_grant_id is not None and access_grant_id in state.access_grants:
            raise InvalidInput(f"access_grant {access_grant_id} already exists")
        grant_id = access_grant_id or state.new_id()
        grant = objects.access_grant(
            access_grant_id=grant_id,
            workspace_id=state.workspace_id,
            user_identity_id=user_identity_id,
            display_name=name or f"Access Grant for {user.get('display_name', 'user')}",
            name=name,
            created_at=state.stamp(),
            starts_at=to_iso(start),
            ends_at=None if ends_at is None else to_iso(ends_at),
            space_ids=space_ids,
        )
        if acs_entrance_ids:
            grant["acs_entrance_ids"] = list(acs_entrance_ids)
        if device_ids:
            grant["device_ids"] = list(device_ids)
        if access_grant_key is not None:
            grant["access_grant_key"] = access_grant_key
        if reservation_key is not None:
            grant["reservation_key"] = reservation_key
        state.access_grants.put(grant_id, grant)
        state.events.append("access_grant.created", access_grant_id=grant_id)
        for request in requests:
            state.methods.add(grant, request, issue=issue)
        refresh_instant_key(grant, state.methods.of_grant(grant_id))
        if extra:
            grant.update(extra)
        return grant

    def update(
        self,
        access_grant_id: str,
        *,
        starts_at: datetime | Unset = UNSET,
        ends_at: datetime | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
    ) -> JsonObject:
        """Change a grant's window or name; a window change logs ``access_times_changed``."""
        grant = self._mutable_grant(access_grant_id)
        if not isinstance(name, Unset):
            grant["name"] = name
            if name:
                grant["display_name"] = name
        if isinstance(starts_at, Unset) and isinstance(ends_at, Unset):
            return grant
        new_start = starts_at if not isinstance(starts_at, Unset) else _parsed(grant["starts_at"])
        new_end = ends_at if not isinstance(ends_at, Unset) else _parsed_opt(grant["ends_at"])
        _check_window(new_start, new_end)
        grant["starts_at"] = to_iso(new_start)
        grant["ends_at"] = None if new_end is None else to_iso(new_end)
        fields: JsonObject = {"access_grant_id": access_grant_id, "starts_at": grant["starts_at"]}
        if grant["ends_at"] is not None:
            fields["ends_at"] = grant["ends_at"]
        if "access_grant_key" in grant:
            fields["access_grant_key"] = grant["access_grant_key"]
        self._state.events.append("access_grant.access_times_changed", **fields)
        return grant

    def delete(self, access_grant_id: str) -> None:
        """Delete a grant and its access methods (``access_method.deleted`` for each)."""
        grant = self._mutable_grant(access_grant_id)
        methods = self._state.methods
        for key in methods.keys_of_grant(access_grant_id):
            methods.drop(grant, key, "access_method.deleted")
        self._state.access_grants.remove(access_grant_id)
        self._state.events.append("access_grant.deleted", access_grant_id=access_grant_id)


def _check_window(starts_at: datetime, ends_at: datetime | None) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at")


def _parsed(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parsed_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
