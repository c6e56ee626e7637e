"""The cloud client's transport through httpx: for a proxy in the environment, or a test's
httpx transport. Imported only then: the daemon's usual path is :mod:`gateway.cloud.http11`,
and httpx with its dependencies is a few MiB resident that a Pi need not hold."""

from __future__ import annotations

import httpx

from gateway.cloud.http11 import HttpError, HttpTimeout, Reply


class HttpxPoster:
    """:class:`~gateway.cloud.http11.Http11`'s interface (``post``, ``aclose``) over httpx,
    its errors turned into the same :class:`HttpTimeout` and :class:`HttpError`."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={**headers, "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    async def post(self, path: str, body: bytes) -> Reply:
        try:
            resp = await self.client.post(path, content=body)
        except httpx.TimeoutException as err:
            raise HttpTimeout(str(err) or "timed out") from err
        except httpx.HTTPError as err:
            raise HttpError(f"{type(err).__name__}: {err}") from err
        return Reply(resp.status_code, dict(resp.headers), resp.content)

    async def aclose(self) -> None:
        await self.client.aclose()
