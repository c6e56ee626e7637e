"""Request parameters, read the same way from a Seam SDK GET query or a JSON body.

GET (the official SDK's style): lists are repeated keys (``ids=a&ids=b``), a lone empty value
of a list key is the empty list, an empty scalar is ``null``, nested objects use dotted keys
(``user_identity.full_name``) and ``_strict`` is ignored. POST/PATCH/DELETE: a JSON object
body; when the body is empty, the query string is used (the SDK's DELETE sends a query).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiMapping

from fakecloud.errors import InvalidInput
from fakecloud.json_types import JsonObject
from fakecloud.timestamps import parse_iso

IGNORED_KEYS = frozenset({"_strict"})


class Params:
    """Typed access to one request's parameters; bad types raise :class:`InvalidInput`."""

    def __init__(
        self, body: Mapping[str, Any] | None = None, query: MultiMapping[str] | None = None
    ) -> None:
        self._body: JsonObject = dict(body or {})
        self._query: MultiMapping[str] = query if query is not None else MultiDict[str]()

    @classmethod
    async def read(cls, request: web.Request) -> Params:
        raw = await request.read()
        if not raw.strip():
            return cls(query=request.query)
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise InvalidInput("request body is not valid JSON") from err
        if not isinstance(body, dict):
            raise InvalidInput("request body must be a JSON object")
        return cls(body=body)

    def as_dict(self, *, keep_ignored: bool = False) -> JsonObject:
        """All parameters as JSON (query values as strings, repeated keys as lists)."""
        if self._body:
            return dict(self._body)
        out: JsonObject = {}
        for key in self._query:
            if (keep_ignored or key not in IGNORED_KEYS) and key not in out:
                values = self._query.getall(key)
                out[key] = values[0] if len(values) == 1 else list(values)
        return out

    def has(self, name: str) -> bool:
        return name in self._body or name in self._query

    def _scalar(self, name: str) -> Any:
        if name in self._body:
            return self._body[name]
        if name in self._query:
            value = self._query.getall(name)[-1]
            return None if value == "" else value
        return None

    def opt_str(self, name: str) -> str | None:
        value = self._scalar(name)
        if value is None or isinstance(value, str):
            return value
        raise InvalidInput(f"{name} must be a string")

    def req_str(self, name: str) -> str:
        value = self.opt_str(name)
        if value is None:
            raise InvalidInput(f"{name} is required")
        return value

    def opt_str_list(self, name: str) -> list[str] | None:
        if name in self._body:
            value = self._body[name]
            if value is None:
                return None
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return list(value)
            raise InvalidInput(f"{name} must be a list of strings")
        if name in self._query:
            return [item for item in self._query.getall(name) if item != ""]
        return None

    def opt_bool(self, name: str) -> bool | None:
        value = self._scalar(name)
        if value is None or isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise InvalidInput(f"{name} must be a boolean")

    def opt_number(self, name: str) -> float | None:
        value = self._scalar(name)
        if value is None:
            return None
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"{name} must be a number") from err
        if not math.isfinite(number):
            raise InvalidInput(f"{name} must be a finite number")
        return number

    def opt_time(self, name: str) -> datetime | None:
        value = self.opt_str(name)
        return None if value is None else parse_iso(value, field=name)

    def opt_object(self, name: str) -> JsonObject | None:
        """A nested object: a JSON object in a body, dotted keys (``name.field``) in a query."""
        if name in self._body:
            value = self._body[name]
            if value is None or isinstance(value, dict):
                return value
            raise InvalidInput(f"{name} must be an object")
        prefix = f"{name}."
        found = {
            key[len(prefix) :]: self._query.getall(key)[-1]
            for key in self._query
            if key.startswith(prefix)
        }
        return found or None

    def opt_list(self, name: str) -> list[Any] | None:
        """A list of arbitrary JSON items (a body list, or repeated query values)."""
        if name in self._body:
            value = self._body[name]
            if value is None or isinstance(value, list):
                return value
            raise InvalidInput(f"{name} must be a list")
        if name in self._query:
            return [item for item in self._query.getall(name) if item != ""]
        return None

    def limit(self, default: int) -> int:
        number = self.opt_number("limit")
        if number is None:
            return default
        if number < 1 or number != int(number):
            raise InvalidInput("limit must be a positive whole number")
        return int(number)
