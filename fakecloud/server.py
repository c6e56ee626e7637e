"""``FakeCloudServer``: the fake cloud on a local port, as an async context manager."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from fakecloud.app import build_app
from fakecloud.control import FakeCloudControl
from fakecloud.seed import state_from_seed
from fakecloud.state import WorkspaceState


def new_api_key() -> str:
    """A random key the official SDK accepts (``seam_`` prefix, not a special kind)."""
    return f"seam_test_{secrets.token_urlsafe(24)}"


class FakeCloudServer:
    """Serve a workspace on ``host:port`` (port 0: a free port) for the duration of a block.

    ``async with FakeCloudServer(seed=DEMO_SEED) as cloud:`` then use ``cloud.url`` and
    ``cloud.api_key`` in the client, ``cloud.state`` and ``cloud.control`` in the test.
    """

    def __init__(
        self,
        *,
        state: WorkspaceState | None = None,
        seed: Mapping[str, Any] | str | Path | None = None,
        api_key: str | None = None,
        control_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        if state is not None and (seed is not None or now is not None or rng is not None):
            raise ValueError("give either state or seed/now/rng, not both")
        self.state = state if state is not None else state_from_seed(seed, now=now, rng=rng)
        self.control = FakeCloudControl(self.state)
        self.api_key = api_key or new_api_key()
        self.control_token = control_token or secrets.token_urlsafe(24)
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash); only while running."""
        if self._url is None:
            raise RuntimeError("the fake cloud is not running")
        return self._url

    @property
    def control_url(self) -> str:
        return f"{self.url}/_control"

    async def start(self) -> None:
        """Start serving; after :meth:`stop`, start again on the same port (same ``url``)."""
        if self._runner is not None:
            raise RuntimeError("the fake cloud is already running")
        self.control.outages.closing = False
        app = build_app(self.control, api_key=self.api_key, control_token=self.control_token)
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=self._shutdown_timeout
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._port = port
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop serving (clients then get "connection refused"); hung requests get 503."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.control.outages.shutdown()
        await runner.cleanup()
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
