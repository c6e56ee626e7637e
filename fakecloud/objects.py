"""Builders for the Seam resources the fake cloud serves, with every field the schema requires.

Each builder returns a plain dict shaped like the ``components/schemas`` entry of the same name
in Seam's OpenAPI document. ``extra`` fields are merged last, so a test can add unknown fields
(or override known ones) to check that a client keeps or tolerates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fakecloud.json_types import JsonObject

METHOD_DISPLAY_NAMES = {
    "code": "PIN Code Credential",
    "card": "Card Credential",
    "mobile_key": "Mobile Key Credential",
    "cloud_key": "Cloud Key Credential",
}
"""Default ``display_name`` of an access method by mode (as in Seam's documentation)."""


def _merged(obj: JsonObject, extra: Mapping[str, Any] | None) -> JsonObject:
    if extra:
        obj.update(extra)
    return obj


def space(
    *,
    space_id: str,
    workspace_id: str,
    name: str,
    created_at: str,
    space_key: str | None = None,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    obj: JsonObject = {
        "space_id": space_id,
        "workspace_id": workspace_id,
        "name": name,
        "display_name": display_name or name,
        "created_at": created_at,
        "device_count": 0,
        "acs_entrance_count": 0,
    }
    if space_key is not None:
        obj["space_key"] = space_key
    return _merged(obj, extra)


def acs_entrance(
    *,
    acs_entrance_id: str,
    acs_system_id: str,
    connected_account_id: str,
    display_name: str,
    space_ids: Sequence[str],
    created_at: str,
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    obj: JsonObject = {
        "acs_entrance_id": acs_entrance_id,
        "acs_system_id": acs_system_id,
        "connected_account_id": connected_account_id,
        "display_name": display_name,
        "space_ids": list(space_ids),
        "created_at": created_at,
        "errors": [],
        "warnings": [],
        "can_unlock_with_code": True,
        "can_unlock_with_card": True,
        "can_unlock_with_mobile_key": True,
        "can_unlock_with_cloud_key": False,
        "is_locked": True,
    }
    return _merged(obj, extra)


def device(
    *,
    device_id: str,
    workspace_id: str,
    connected_account_id: str,
    display_name: str,
    device_type: str,
    space_ids: Sequence[str],
    created_at: str,
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    obj: JsonObject = {
        "device_id": device_id,
        "device_type": device_type,
        "workspace_id": workspace_id,
        "connected_account_id": connected_account_id,
        "display_name": display_name,
        "space_ids": list(space_ids),
        "capabilities_supported": ["access_code", "lock"],
        "properties": {
            "online": True,
            "locked": True,
            "name": display_name,
            "appearance": {"name": display_name},
            "model": {"display_name": "Smart Lock", "manufacturer_display_name": "Lockgate"},
        },
        "errors": [],
        "warnings": [],
        "created_at": created_at,
        "is_managed": True,
        "custom_metadata": {},
        "can_program_online_access_codes": True,
        "can_remotely_lock": True,
        "can_remotely_unlock": True,
    }
    return _merged(obj, extra)


def user_identity(
    *,
    user_identity_id: str,
    workspace_id: str,
    created_at: str,
    full_name: str | None = None,
    email_address: str | None = None,
    phone_number: str | None = None,
    user_identity_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    display_name = full_name or email_address or phone_number or user_identity_key or "User"
    obj: JsonObject = {
        "user_identity_id": user_identity_id,
        "user_identity_key": user_identity_key,
        "workspace_id": workspace_id,
        "email_address": email_address,
        "phone_number": phone_number,
        "full_name": full_name,
        "display_name": display_name,
        "created_at": created_at,
        "errors": [],
        "warnings": [],
        "acs_user_ids": [],
    }
    return _merged(obj, extra)


def access_method(
    *,
    access_method_id: str,
    workspace_id: str,
    mode: str,
    display_name: str,
    created_at: str,
    issued_at: str | None,
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    obj: JsonObject = {
        "access_method_id": access_method_id,
        "workspace_id": workspace_id,
        "mode": mode,
        "display_name": display_name,
        "created_at": created_at,
        "is_issued": issued_at is not None,
        "issued_at": issued_at,
        "warnings": [],
        "errors": [],
        "pending_mutations": [],
    }
    if mode == "card":
        obj["is_encoding_required"] = False
    return _merged(obj, extra)


def access_grant(
    *,
    access_grant_id: str,
    workspace_id: str,
    user_identity_id: str,
    display_name: str,
    name: str | None,
    created_at: str,
    starts_at: str,
    ends_at: str | None,
    space_ids: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> JsonObject:
    obj: JsonObject = {
        "access_grant_id": access_grant_id,
        "workspace_id": workspace_id,
        "user_identity_id": user_identity_id,
        "location_ids": [],
        "space_ids": list(space_ids),
        "requested_access_methods": [],
        "access_method_ids": [],
        "name": name,
        "display_name": display_name,
        "created_at": created_at,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "warnings": [],
        "errors": [],
        "pending_mutations": [],
    }
    return _merged(obj, extra)
