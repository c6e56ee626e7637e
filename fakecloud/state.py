"""The in-memory Seam workspace: spaces, entrances, devices, users, grants, methods, events.

Objects are stored as the dicts the API serves (see :mod:`fakecloud.objects`). Grant changes
live in ``state.grants`` (:class:`fakecloud.grants.GrantOps`), access method changes in
``state.methods`` (:class:`fakecloud.access_methods.MethodOps`).
The clock (``now``) and the randomness (``rng``: ids, PINs, card numbers) are injectable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fakecloud import objects
from fakecloud.access_methods import MethodOps
from fakecloud.collection import Collection
from fakecloud.errors import InvalidInput, NotFound
from fakecloud.events import EventLog
from fakecloud.grants import GrantOps
from fakecloud.json_types import JsonObject
from fakecloud.timestamps import to_iso, utc_now

RAW_COLLECTIONS = (
    "access_grants",
    "access_methods",
    "user_identities",
    "spaces",
    "acs_entrances",
    "devices",
    "events",
)
"""Names accepted by :meth:`WorkspaceState.inject_raw`."""

_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


class WorkspaceState:
    """One Seam workspace held in memory."""

    def __init__(
        self,
        *,
        workspace_id: str | None = None,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.now: Callable[[], datetime] = now if now is not None else utc_now
        self.workspace_id = workspace_id or self.new_id()
        self.acs_system_id = self.new_id()
        self.connected_account_id = self.new_id()
        self.spaces = Collection("space")
        self.acs_entrances = Collection("acs_entrance")
        self.devices = Collection("device")
        self.user_identities = Collection("user_identity")
        self.access_grants = Collection("access_grant")
        self.access_methods = Collection("access_method")
        self.events = EventLog(workspace_id=self.workspace_id, now=self.now, new_id=self.new_id)
        self.method_grant: dict[str, str] = {}
        """``access_method_id`` → ``access_grant_id`` (not served: Seam's methods lack it)."""
        self.grant_methods: dict[str, dict[str, None]] = {}
        """``access_grant_id`` → the keys of its access methods, in order (the reverse index)."""
        self.raw_keys: set[tuple[str, str]] = set()
        self.grants = GrantOps(self)
        self.methods = MethodOps(self)

    # -- small helpers -------------------------------------------------------------------
    def new_id(self) -> str:
        """A random version-4 UUID from ``rng`` (the text of ``uuid.UUID(int=..., version=4)``,
        built without the UUID object: ids are made for every object and event)."""
        n = self.rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def stamp(self) -> str:
        return to_iso(self.now())

    def collection(self, name: str) -> Collection:
        if name not in RAW_COLLECTIONS or name == "events":
            raise InvalidInput(f"unknown collection {name!r}")
        found: Collection = getattr(self, name)
        return found

    def is_raw(self, collection: str, key: str) -> bool:
        return (collection, key) in self.raw_keys

    def _free_id(self, collection: Collection, given: str | None) -> str:
        if given is None:
            return self.new_id()
        if given in collection:
            raise InvalidInput(f"{collection.kind} {given} already exists")
        return given

    def _require_all(self, collection: Collection, keys: Sequence[str]) -> None:
        for key in keys:
            if key not in collection:
                raise NotFound(f"{collection.kind} {key} not found")

    def link_method(self, method_key: str, access_grant_id: str) -> None:
        self.method_grant[method_key] = access_grant_id
        self.grant_methods.setdefault(access_grant_id, {})[method_key] = None

    def unlink_method(self, method_key: str) -> None:
        grant_id = self.method_grant.pop(method_key, None)
        keys = self.grant_methods.get(grant_id) if grant_id is not None else None
        if keys is not None:
            keys.pop(method_key, None)
            if not keys:
                del self.grant_methods[str(grant_id)]

    # -- directory objects ---------------------------------------------------------------
    def add_space(
        self,
        *,
        name: str,
        space_id: str | None = None,
        space_key: str | None = None,
        display_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        if space_key is not None and any(s.get("space_key") == space_key for s in self.spaces):
            raise InvalidInput(f"space_key {space_key!r} already in use")
        key = self._free_id(self.spaces, space_id)
        obj = objects.space(
            space_id=key,
            workspace_id=self.workspace_id,
            name=name,
            display_name=display_name,
            space_key=space_key,
            created_at=self.stamp(),
            extra=extra,
        )
        return self.spaces.put(key, obj)

    def add_acs_entrance(
        self,
        *,
        display_name: str,
        space_ids: Sequence[str] = (),
        acs_entrance_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        self._require_all(self.spaces, space_ids)
        key = self._free_id(self.acs_entrances, acs_entrance_id)
        obj = objects.acs_entrance(
            acs_entrance_id=key,
            acs_system_id=self.acs_system_id,
            connected_account_id=self.connected_account_id,
            display_name=display_name,
            space_ids=space_ids,
            created_at=self.stamp(),
            extra=extra,
        )
        for space_id in space_ids:
            self._bump(space_id, "acs_entrance_count")
        return self.acs_entrances.put(key, obj)

    def add_device(
        self,
        *,
        display_name: str,
        space_ids: Sequence[str] = (),
        device_id: str | None = None,
        device_type: str = "schlage_lock",
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        self._require_all(self.spaces, space_ids)
        key = self._free_id(self.devices, device_id)
        obj = objects.device(
            device_id=key,
            workspace_id=self.workspace_id,
            connected_account_id=self.connected_account_id,
            display_name=display_name,
            device_type=device_type,
            space_ids=space_ids,
            created_at=self.stamp(),
            extra=extra,
        )
        for space_id in space_ids:
            self._bump(space_id, "device_count")
        return self.devices.put(key, obj)

    def _bump(self, space_id: str, counter: str) -> None:
        space = self.spaces.get(space_id)
        if space is not None and not self.is_raw("spaces", space_id):
            space[counter] = space.get(counter, 0) + 1

    def add_user_identity(
        self,
        *,
        full_name: str | None = None,
        email_address: str | None = None,
        phone_number: str | None = None,
        user_identity_key: str | None = None,
        user_identity_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        for field, value in (
            ("user_identity_key", user_identity_key),
            ("email_address", email_address),
            ("phone_number", phone_number),
        ):
            if value is not None and any(u.get(field) == value for u in self.user_identities):
                raise InvalidInput(f"{field} {value!r} already in use")
        key = self._free_id(self.user_identities, user_identity_id)
        obj = objects.user_identity(
            user_identity_id=key,
            workspace_id=self.workspace_id,
            created_at=self.stamp(),
            full_name=full_name,
            email_address=email_address,
            phone_number=phone_number,
            user_identity_key=user_identity_key,
            extra=extra,
        )
        return self.user_identities.put(key, obj)

    def delete_user_identity(self, user_identity_id: str, *, finish: bool = True) -> None:
        """Delete a user identity the way Seam does: with everything that hangs off it.

        Seam's ``/user_identities/delete`` "deletes the user identity and all associated
        resources". Here that is its access grants (each with ``access_method.deleted`` for its
        methods and ``access_grant.deleted``, as a grant deletion logs) and its ACS users
        (``acs_user.deleted``); Seam has no event for the identity itself. ``finish=False``
        stops half way, as a client can see while Seam works: the identity, its grants and
        their methods carry Seam's ``being_deleted`` warning and nothing is removed yet.
        """
        user = self.user_identities.get(user_identity_id)
        if user is None:
            raise NotFound(f"user_identity {user_identity_id} not found")
        grant_ids = [
            key
            for key, g in self.access_grants.items()
            if g.get("user_identity_id") == user_identity_id
            and not self.is_raw("access_grants", key)
        ]
        if not finish:
            warning = {
                "created_at": self.stamp(),
                "warning_code": "being_deleted",
            }
            _warn(user, {**warning, "message": "User identity is being deleted."})
            for grant_id in grant_ids:
                _warn(
                    self.grants.get(grant_id),
                    {**warning, "message": "Access grant is being deleted."},
                )
                for method in self.methods.of_grant(grant_id):
                    _warn(method, {**warning, "message": "Access method is being deleted."})
            return
        for grant_id in grant_ids:
            self.grants.delete(grant_id)
        for acs_user_id in user.get("acs_user_ids") or []:
            self.events.append(
                "acs_user.deleted", acs_system_id=self.acs_system_id, acs_user_id=acs_user_id
            )
        self.user_identities.remove(user_identity_id)

    # -- broken objects for client tests -------------------------------------------------
    def inject_raw(
        self, collection: str, obj: Mapping[str, Any], *, access_grant_id: str | None = None
    ) -> str:
        """Store ``obj`` verbatim in ``collection`` (one of :data:`RAW_COLLECTIONS`).

        The object is served as given by list and get endpoints, even when it breaks the
        schema (a grant missing required fields, ``ends_at`` before ``starts_at`` ...). It is
        keyed by its own id field when it has a string one. An access method can be attached
        to a grant with ``access_grant_id`` so that ``/access_methods/list`` finds it. Raw
        objects cannot be changed through the API. Returns the key.
        """
        if collection == "events":
            stored = self.events.append_raw(obj)
            return str(stored.get("event_id", ""))
        target = self.collection(collection)
        id_field = f"{target.kind}_id"
        given = obj.get(id_field)
        key = given if isinstance(given, str) else f"raw-{self.new_id()}"
        target.put(key, dict(obj))
        self.raw_keys.add((collection, key))
        if collection == "access_methods" and access_grant_id is not None:
            self.link_method(key, access_grant_id)
        return key


def _warn(obj: JsonObject, warning: JsonObject) -> None:
    warnings = obj.setdefault("warnings", [])
    if isinstance(warnings, list) and not any(
        isinstance(w, dict) and w.get("warning_code") == warning["warning_code"] for w in warnings
    ):
        warnings.append(warning)
