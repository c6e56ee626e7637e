"""Simulated outages, one-shot failures, the request log and the Date header."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from fakecloud import DEMO_SEED, FakeCloudServer, OutageMode
from fakecloud.clock import ManualClock

PATH = "/access_grants/list"


async def test_refuse_answers_503_until_cleared(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("refuse")
    refused = await http.get(PATH)
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "service_unavailable"
    cloud.control.clear_outage()
    assert (await http.get(PATH)).status_code == 200


async def test_http_429_carries_retry_after(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage(OutageMode.HTTP_429, retry_after_s=7)
    response = await http.get(PATH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


async def test_malformed_json_is_a_200_with_a_broken_body(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("malformed_json")
    response = await http.get(PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError, match=r"."):
        response.json()


async def test_unauthorized_mode_rejects_the_right_key(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("unauthorized")
    response = await http.get(PATH)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


async def test_hang_answers_only_when_cleared(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("hang")
    pending = asyncio.create_task(http.get(PATH))
    async with asyncio.timeout(5):
        [record] = await cloud.control.wait_for_requests(path=PATH)
    assert record.status is None
    assert record.outage == "hang"
    assert not pending.done()
    cloud.control.clear_outage()
    async with asyncio.timeout(5):
        response = await pending
    assert response.status_code == 200
    assert record.status == 200


async def test_hang_trips_the_client_timeout(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("hang")
    with pytest.raises(httpx.ReadTimeout):
        await http.get(PATH, timeout=0.2)


async def test_stopping_the_server_releases_hung_requests() -> None:
    async with FakeCloudServer(seed=DEMO_SEED) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            server.control.set_outage("hang")
            pending = asyncio.create_task(client.get(PATH))
            async with asyncio.timeout(5):
                await server.control.wait_for_requests(path=PATH)
                await server.stop()
                response = await pending
    assert response.status_code == 503


async def test_slow_answers_after_the_delay_or_when_cleared(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("slow", delay_s=0.05)
    async with asyncio.timeout(5):
        assert (await http.get(PATH)).status_code == 200
    cloud.control.set_outage("slow", delay_s=600)
    pending = asyncio.create_task(http.get(PATH))
    async with asyncio.timeout(5):
        await cloud.control.wait_for_requests(2, path=PATH)
        cloud.control.clear_outage()
        response = await pending
    assert response.status_code == 200
    assert [r.outage for r in cloud.control.requests_to(PATH)] == ["slow", "slow"]


async def test_fail_next_hits_only_the_next_requests(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.fail_next(2, "refuse")
    statuses = [(await http.get(PATH)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    cloud.control.fail_next(1, "http_429", path="/spaces/list")
    assert (await http.get(PATH)).status_code == 200
    assert (await http.get("/spaces/list")).status_code == 429
    assert (await http.get("/spaces/list")).status_code == 200


async def test_fail_next_then_standing_outage(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    cloud.control.set_outage("refuse")
    cloud.control.fail_next(1, "unauthorized")
    assert [(await http.get(PATH)).status_code for _ in range(2)] == [401, 503]


async def test_request_log_counts_calls(cloud: FakeCloudServer, http: httpx.AsyncClient) -> None:
    await http.get(PATH, params={"limit": 2, "access_grant_ids": ["a", "b"]})
    await http.post("/spaces/list", json={"limit": 1})
    assert cloud.control.request_count() == 2
    [grants] = cloud.control.requests_to(PATH)
    assert grants.params == {"limit": "2", "access_grant_ids": ["a", "b"]}
    assert grants.status == 200
    [spaces] = cloud.control.requests_to("/spaces/list", "POST")
    assert spaces.params == {"limit": 1}


async def test_date_header_follows_clock_and_skew() -> None:
    clock = ManualClock()
    async with FakeCloudServer(seed=DEMO_SEED, now=clock, rng=random.Random(1)) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            plain = await client.get(PATH)
            server.control.set_clock_skew(-3600)
            skewed = await client.get("/nowhere")
    assert parsedate_to_datetime(plain.headers["Date"]) == clock().replace(microsecond=0)
    assert parsedate_to_datetime(skewed.headers["Date"]) == (clock() - timedelta(hours=1)).replace(
        microsecond=0
    )
    assert skewed.status_code == 404


async def test_stopped_server_refuses_connections_then_comes_back(
    cloud: FakeCloudServer, http: httpx.AsyncClient
) -> None:
    url = cloud.url
    await cloud.stop()
    with pytest.raises(httpx.ConnectError):
        await http.get(PATH)
    await cloud.start()
    assert cloud.url == url
    assert (await http.get(PATH)).status_code == 200
