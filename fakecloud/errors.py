"""Seam-style API errors: each carries the HTTP status and the ``error.type`` of the body."""

from __future__ import annotations

from fakecloud.json_types import JsonObject


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message"}, "ok": false}``."""

    status: int = 500
    error_type: str = "internal_server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self, request_id: str | None = None) -> JsonObject:
        error: JsonObject = {"type": self.error_type, "message": self.message}
        if request_id is not None:
            error["request_id"] = request_id
        return {"error": error, "ok": False}


class InvalidInput(ApiError):
    """A missing, malformed or contradictory parameter (400)."""

    status = 400
    error_type = "invalid_input"


class NotFound(ApiError):
    """An id or key that names nothing in the workspace (404)."""

    status = 404
    error_type = "not_found"


class Unauthorized(ApiError):
    """A missing or wrong API key (401)."""

    status = 401
    error_type = "unauthorized"
