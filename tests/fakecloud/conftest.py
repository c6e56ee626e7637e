"""Fixtures for the fake cloud's tests: a running server, clients, a manual clock, the schema.

The suite-wide ``tests/conftest.py`` fails any test that leaks asyncio tasks.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from jsonschema import FormatChecker  # type: ignore[import-untyped]
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from seam.seam import AsyncSeam

from fakecloud import DEMO_SEED, FakeCloudServer
from fakecloud.clock import ManualClock

# Seam's published OpenAPI document, from npm @seamapi/types (pinned by the lockfile in
# reference/seam-openapi/), exported there by scripts/bootstrap.sh.
OPENAPI_PATH = (
    Path(__file__).resolve().parents[2] / "reference" / "seam-openapi" / "openapi.json"
)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "ok"],
    "properties": {
        "ok": {"enum": [False]},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
"""Seam's error body. The published document declares 400/401 without a body schema."""


class OpenApi:
    """Validates bodies against the response schemas of Seam's published OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._components = _without_inline_discriminators(document["components"])
        checker = FormatChecker(formats=())
        checker.checkers = dict(oas30_format_checker.checkers)
        checker.checks("uri")(_is_absolute_uri)
        self._checker = checker

    def response_schema(self, path: str, method: str = "post") -> dict[str, Any]:
        operation = self.document["paths"][path][method.lower()]
        schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        return schema

    def errors(self, schema: dict[str, Any], body: Any) -> list[str]:
        rooted = {**schema, "components": self._components}
        validator = OAS30Validator(rooted, format_checker=self._checker)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}"
            for e in validator.iter_errors(body)
        ]

    def check_response(self, path: str, body: Any, method: str = "post") -> None:
        problems = self.errors(self.response_schema(path, method), body)
        assert not problems, f"{path} response breaks the schema: {problems[:5]}"

    def check_component(self, name: str, body: Any) -> None:
        problems = self.errors({"$ref": f"#/components/schemas/{name}"}, body)
        assert not problems, f"{name} breaks the schema: {problems[:5]}"

    def check_error(self, body: Any) -> None:
        problems = self.errors(ERROR_SCHEMA, body)
        assert not problems, f"error body breaks Seam's shape: {problems}"


def _without_inline_discriminators(node: Any) -> Any:
    """A copy without the ``discriminator`` hints that sit over inline ``oneOf`` schemas.

    The document has no ``mapping`` and no named schemas under them, so a validator that
    honours the discriminator looks for ``#/components/schemas/<event_type>`` and fails;
    plain ``oneOf`` (each branch pins ``event_type`` / ``error_code`` with an enum) is the
    check the document can support.
    """
    if isinstance(node, list):
        return [_without_inline_discriminators(item) for item in node]
    if not isinstance(node, dict):
        return node
    inline = "mapping" not in node.get("discriminator", {}) and not any(
        "$ref" in branch for branch in node.get("oneOf", [])
    )
    return {
        key: _without_inline_discriminators(value)
        for key, value in node.items()
        if not (key == "discriminator" and inline)
    }


def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


@pytest.fixture(scope="session")
def openapi() -> OpenApi:
    if not OPENAPI_PATH.is_file():
        pytest.fail(f"{OPENAPI_PATH} is missing: run scripts/bootstrap.sh", pytrace=False)
    return OpenApi(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def demo() -> dict[str, Any]:
    """The demo seed as JSON, for its fixed ids."""
    data: dict[str, Any] = json.loads(DEMO_SEED.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(datetime(2025, 6, 16, 16, 54, 17, tzinfo=UTC))


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloudServer]:
    """The demo workspace served on a free port."""
    async with FakeCloudServer(seed=DEMO_SEED, rng=random.Random(7)) as server:
        yield server


@pytest.fixture
async def http(cloud: FakeCloudServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client with the API key."""
    headers = {"Authorization": f"Bearer {cloud.api_key}"}
    async with httpx.AsyncClient(base_url=cloud.url, headers=headers, timeout=5.0) as client:
        yield client


@pytest.fixture
async def seam(cloud: FakeCloudServer) -> AsyncIterator[AsyncSeam]:
    """The official SDK pointed at the fake cloud."""
    async with AsyncSeam(api_key=cloud.api_key, endpoint=cloud.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def grant_ids(demo: dict[str, Any]) -> list[str]:
    return [g["access_grant_id"] for g in demo["access_grants"]]
