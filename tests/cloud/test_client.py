"""The thin cloud client against the fake cloud: auth, pagination, retries, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from drivers.backoff import Backoff
from fakecloud.server import FakeCloudServer
from gateway.cloud.client import CloudClient
from gateway.cloud.errors import (
    CloudAuthError,
    CloudBadResponseError,
    CloudRequestError,
    CloudUnavailableError,
)


class Sleeps:
    """Records the delays the client asked for, without waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloudServer]:
    async with FakeCloudServer() as c:
        space = c.state.add_space(name="A")["space_id"]
        user = c.state.add_user_identity(full_name="U")["user_identity_id"]
        for i in range(7):
            c.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": f"{1000 + i}"}],
            )
        yield c


def client(cloud: FakeCloudServer, sleeps: Sleeps, **kw: object) -> CloudClient:
    return CloudClient(
        cloud.url,
        kw.pop("key", cloud.api_key),  # type: ignore[arg-type]
        sleep=sleeps,
        backoff=Backoff(0.5, 8.0),
        **kw,  # type: ignore[arg-type]
    )


async def test_pages_are_followed_to_the_end(cloud: FakeCloudServer) -> None:
    sleeps = Sleeps()
    async with client(cloud, sleeps) as c:
        grants = await c.list_all("/access_grants/list", "access_grants", page_size=3)
    assert len({g["access_grant_id"] for g in grants}) == 7
    assert cloud.control.request_count("/access_grants/list") == 3
    assert c.last_server_time is not None


async def test_bad_key_is_a_configuration_error_and_not_retried(cloud: FakeCloudServer) -> None:
    sleeps = Sleeps()
    async with client(cloud, sleeps, key="seam_wrong") as c:
        with pytest.raises(CloudAuthError, match="refused the API key"):
            await c.call("/access_grants/list")
    assert sleeps.delays == []
    assert cloud.control.request_count("/access_grants/list") == 1


async def test_429_honours_retry_after(cloud: FakeCloudServer) -> None:
    sleeps = Sleeps()
    cloud.control.fail_next(2, "http_429", retry_after_s=7)
    async with client(cloud, sleeps) as c:
        data = await c.call("/access_grants/list")
    assert data["ok"] is True
    assert sleeps.delays[0] >= 7 and sleeps.delays[1] >= 7


async def test_5xx_backs_off_exponentially_then_gives_up(cloud: FakeCloudServer) -> None:
    sleeps = Sleeps()
    cloud.control.set_outage("refuse")
    async with client(cloud, sleeps, max_retries=4) as c:
        with pytest.raises(CloudUnavailableError):
            await c.call("/access_grants/list")
    assert len(sleeps.delays) == 4
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(sleeps.delays, ceilings, strict=True))


async def test_malformed_json_is_reported_as_such(cloud: FakeCloudServer) -> None:
    cloud.control.set_outage("malformed_json")
    async with client(cloud, Sleeps(), max_retries=1) as c:
        with pytest.raises(CloudBadResponseError, match="not valid JSON"):
            await c.call("/access_grants/list")


async def test_raw_pages_give_each_item_as_its_own_json_text(cloud: FakeCloudServer) -> None:
    async with client(cloud, Sleeps()) as c:
        texts = [
            bytes(t)
            async for page in c.raw_pages("/access_grants/list", "access_grants", page_size=3)
            for t in page.items
        ]
        whole = await c.list_all("/access_grants/list", "access_grants", page_size=3)
    assert [msgspec.json.decode(t) for t in texts] == whole
    assert len(texts) == 7


async def test_raw_pages_of_the_wrong_shape_or_not_json_are_bad_responses(
    cloud: FakeCloudServer,
) -> None:
    async with client(cloud, Sleeps(), max_retries=0) as c:
        with pytest.raises(CloudBadResponseError, match="'grants' missing or not a list"):
            async for _ in c.raw_pages("/access_grants/list", "grants"):
                pass
        cloud.control.set_outage("malformed_json")
        with pytest.raises(CloudBadResponseError, match="not valid JSON"):
            async for _ in c.raw_pages("/access_grants/list", "access_grants"):
                pass


async def test_a_hanging_cloud_times_out(cloud: FakeCloudServer) -> None:
    cloud.control.set_outage("hang")
    async with client(cloud, Sleeps(), max_retries=0, timeout_s=0.2) as c:
        with pytest.raises(CloudUnavailableError, match="timed out"):
            await c.call("/access_grants/list")
    cloud.control.clear_outage()


async def test_our_own_mistakes_are_not_retried(cloud: FakeCloudServer) -> None:
    sleeps = Sleeps()
    async with client(cloud, sleeps) as c:
        with pytest.raises(CloudRequestError, match="400"):
            await c.call("/access_methods/list", {})  # needs a filter
    assert sleeps.delays == []


async def test_the_key_never_appears_in_errors(cloud: FakeCloudServer) -> None:
    cloud.control.set_outage("refuse")
    async with client(cloud, Sleeps(), max_retries=0) as c:
        with pytest.raises(CloudUnavailableError) as info:
            await c.call("/access_grants/list")
    assert cloud.api_key not in str(info.value)


class _ImportAttempts:
    """A meta path finder that finds nothing and notes what was looked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)


async def test_a_request_imports_nothing_once_the_client_is_warm(cloud: FakeCloudServer) -> None:
    """httpcore imports sniffio on every request and lock; without it installed, each of
    those imports failed anew and searched the whole sys.path (a quarter of a request's
    CPU at site scale, 84 page requests a full sync)."""
    import sys

    attempts = _ImportAttempts()
    async with client(cloud, Sleeps()) as c:
        await c.list_all("/access_grants/list", "access_grants", page_size=2)  # warm
        sys.meta_path.insert(0, attempts)
        try:
            grants = await c.list_all("/access_grants/list", "access_grants", page_size=2)
        finally:
            sys.meta_path.remove(attempts)
    assert len(grants) == 7
    assert attempts.names == []
