"""JSON value aliases shared by the fake cloud's modules."""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
"""A JSON object as the fake cloud stores and serves it (a Seam resource, an event, a body)."""
