"""Access methods of grants: creating them for a grant, issuing, changing and removing them.

Mode ``code`` gets a ``code`` (a random 6-digit PIN unless one is given), mode ``card`` gets the
extension field ``card_number`` (random digits unless given), mode ``mobile_key`` gets an
``instant_key_url``. Each change logs the Seam event of the same name (``access_method.*``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fakecloud import objects
from fakecloud.errors import InvalidInput, NotFound
from fakecloud.json_types import JsonObject

if TYPE_CHECKING:
    from fakecloud.state import WorkspaceState

MODES = ("code", "card", "mobile_key", "cloud_key")
_DIGITS = re.compile(r"^\d+$")


class MethodOps:
    """Access method changes on one :class:`WorkspaceState` (reachable as ``state.methods``)."""

    def __init__(self, state: WorkspaceState) -> None:
        self._state = state
        self._codes: Counter[str] = Counter()
        """How many methods hold each code (for unique generated codes in O(1))."""

    def of_grant(self, access_grant_id: str) -> list[JsonObject]:
        """Access methods of the grant (including injected raw ones attached to it)."""
        methods = self._state.access_methods
        found = (methods.get(key) for key in self.keys_of_grant(access_grant_id))
        return [m for m in found if m is not None]

    def keys_of_grant(self, access_grant_id: str) -> list[str]:
        """Keys of the grant's access methods (raw ones may lack an ``access_method_id``)."""
        return list(self._state.grant_methods.get(access_grant_id, ()))

    def _mutable(self, access_method_id: str) -> JsonObject:
        method = self._state.access_methods.get(access_method_id)
        if method is None:
            raise NotFound(f"access_method {access_method_id} not found")
        if self._state.is_raw("access_methods", access_method_id):
            raise InvalidInput(f"access_method {access_method_id} is a raw object")
        return method

    def add(self, grant: JsonObject, request: JsonObject, *, issue: bool) -> JsonObject:
        state = self._state
        mode = request["mode"]
        method_id = request.get("access_method_id") or state.new_id()
        stamp = state.stamp()
        display_name = request.get("display_name") or objects.METHOD_DISPLAY_NAMES[mode]
        method = objects.access_method(
            access_method_id=method_id,
            workspace_id=state.workspace_id,
            mode=mode,
            display_name=display_name,
            created_at=stamp,
            issued_at=stamp if issue else None,
        )
        if mode == "code":
            method["code"] = request.get("code") or self._new_code()
        elif mode == "card":
            method["card_number"] = request.get("card_number") or self._digits(10)
        elif mode == "mobile_key":
            method["instant_key_url"] = request.get("instant_key_url") or self._instant_key_url()
        method.update(request.get("extra") or {})
        state.access_methods.put(method_id, method)
        self._count_code(method, +1)
        state.link_method(method_id, grant["access_grant_id"])
        grant["access_method_ids"].append(method_id)
        echo: JsonObject = {
            "display_name": display_name,
            "mode": mode,
            "created_at": stamp,
            "created_access_method_ids": [method_id],
        }
        if request.get("code"):
            echo["code"] = request["code"]
        grant["requested_access_methods"].append(echo)
        self._event("access_method.created", grant, method)
        if issue:
            self._event("access_method.issued", grant, method)
        return method

    def issue(self, access_method_id: str) -> JsonObject:
        """Mark an unissued method issued and log ``access_method.issued``."""
        method = self._mutable(access_method_id)
        method["is_issued"] = True
        method["issued_at"] = self._state.stamp()
        self._event("access_method.issued", self._grant_of(access_method_id), method)
        return method

    def update(
        self,
        access_method_id: str,
        *,
        code: str | None = None,
        card_number: str | None = None,
        display_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Change a method; a new code or card number logs ``access_method.reissued``."""
        method = self._mutable(access_method_id)
        if code is not None:
            check_digits(code, "code", 4, 9)
        if card_number is not None:
            check_digits(card_number, "card_number", 1, 64)
        self._count_code(method, -1)
        if code is not None:
            method["code"] = code
        if card_number is not None:
            method["card_number"] = card_number
        if display_name is not None:
            method["display_name"] = display_name
        if extra:
            method.update(extra)
        self._count_code(method, +1)
        if code is not None or card_number is not None:
            grant = self._grant_of(access_method_id)
            self._event("access_method.reissued", grant, method)
        return method

    def revoke(self, access_method_id: str) -> None:
        """Remove a method from its grant, logging ``access_method.revoked``."""
        self._mutable(access_method_id)
        grant = self._grant_of(access_method_id)
        self.drop(grant, access_method_id, "access_method.revoked")

    def delete(self, access_method_id: str) -> None:
        """Remove a method from its grant, logging ``access_method.deleted``."""
        self._mutable(access_method_id)
        grant = self._grant_of(access_method_id)
        self.drop(grant, access_method_id, "access_method.deleted")

    def _grant_of(self, access_method_id: str) -> JsonObject:
        return self._state.grants.get(self._state.method_grant[access_method_id])

    def drop(self, grant: JsonObject, access_method_id: str, event_type: str) -> None:
        """Remove the method stored under ``access_method_id`` from ``grant``; log the event."""
        state = self._state
        method = state.access_methods.remove(access_method_id)
        state.unlink_method(access_method_id)
        if method is not None and not state.is_raw("access_methods", access_method_id):
            self._count_code(method, -1)
        if isinstance(grant.get("access_method_ids"), list):
            grant["access_method_ids"] = [
                m for m in grant["access_method_ids"] if m != access_method_id
            ]
        for echo in grant.get("requested_access_methods") or []:
            if isinstance(echo, dict) and isinstance(echo.get("created_access_method_ids"), list):
                ids = echo["created_access_method_ids"]
                echo["created_access_method_ids"] = [m for m in ids if m != access_method_id]
        if not state.is_raw("access_grants", str(grant.get("access_grant_id"))):
            refresh_instant_key(grant, self.of_grant(str(grant["access_grant_id"])))
        if method is not None:
            self._event(event_type, grant, method)

    def _event(self, event_type: str, grant: JsonObject, method: JsonObject) -> None:
        fields: JsonObject = {
            "access_method_id": method.get("access_method_id"),
            "access_grant_ids": [grant.get("access_grant_id")],
        }
        if "access_grant_key" in grant:
            fields["access_grant_keys"] = [grant["access_grant_key"]]
        if event_type in ("access_method.issued", "access_method.reissued") and method.get("code"):
            fields["code"] = method["code"]
        self._state.events.append(event_type, **fields)

    # -- randomness ------------------------------------------------------------------------
    def _digits(self, count: int) -> str:
        return "".join(str(self._state.rng.randrange(10)) for _ in range(count))

    def _new_code(self) -> str:
        """A random 6-digit code that no method made through these operations holds."""
        while True:
            code = self._digits(6)
            if not self._codes[code]:
                return code

    def _count_code(self, method: JsonObject, delta: int) -> None:
        code = method.get("code")
        if isinstance(code, str):
            self._codes[code] += delta
            if self._codes[code] <= 0:
                del self._codes[code]

    def _instant_key_url(self) -> str:
        letters = "".join(self._state.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
        return f"https://ik.seam.co/{letters}"


def checked_request(item: Mapping[str, Any]) -> JsonObject:
    if not isinstance(item, Mapping):
        raise InvalidInput("requested_access_methods items must be objects")
    request = dict(item)
    if request.get("mode") not in MODES:
        raise InvalidInput(f"requested access method mode must be one of {', '.join(MODES)}")
    if request.get("code") is not None:
        if request["mode"] != "code":
            raise InvalidInput("code is only allowed for mode 'code'")
        check_digits(request["code"], "code", 4, 9)
    if request.get("card_number") is not None:
        check_digits(request["card_number"], "card_number", 1, 64)
    return request


def check_digits(value: object, field: str, shortest: int, longest: int) -> None:
    if not isinstance(value, str) or not _DIGITS.match(value):
        raise InvalidInput(f"{field} must be a string of digits")
    if not shortest <= len(value) <= longest:
        raise InvalidInput(f"{field} must have {shortest} to {longest} digits")


def refresh_instant_key(grant: JsonObject, methods: list[JsonObject]) -> None:
    mobile = [m for m in methods if m.get("mode") == "mobile_key"]
    if len(mobile) == 1 and isinstance(mobile[0].get("instant_key_url"), str):
        grant["instant_key_url"] = mobile[0]["instant_key_url"]
    else:
        grant.pop("instant_key_url", None)
