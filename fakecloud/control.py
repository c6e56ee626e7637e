"""The in-process control plane of the fake cloud: outages, the request log, the clock skew.

Workspace contents are changed through ``control.state`` (a :class:`WorkspaceState`: grants
under ``state.grants``, access methods under ``state.methods``, broken objects with
``state.inject_raw``). The same knobs are served over HTTP under ``/_control/`` by
:mod:`fakecloud.control_routes`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fakecloud.outage import Outage, OutageController, OutageMode
from fakecloud.request_log import RequestLog, RequestRecord
from fakecloud.state import WorkspaceState


class FakeCloudControl:
    """Knobs a test or the demo turns while clients talk to the fake cloud."""

    def __init__(self, state: WorkspaceState) -> None:
        self.state = state
        self.outages = OutageController()
        self.requests = RequestLog()
        self.clock_skew = timedelta(0)
        """Added to the workspace clock in the ``Date`` header (tests of clock trust)."""
        self.access_methods_pagination = True
        """Whether ``/access_methods/list`` pages and returns ``pagination`` (as SDK 3.18.0
        expects). False mimics the published OpenAPI document: all methods, no pagination."""

    # -- outages ---------------------------------------------------------------------------
    def set_outage(self, mode: Outage | OutageMode | str, **options: float) -> Outage:
        """Fail every API request until :meth:`clear_outage` (see :mod:`fakecloud.outage`)."""
        return self.outages.set(mode, **options)

    def clear_outage(self) -> None:
        self.outages.clear()

    def fail_next(
        self,
        count: int,
        mode: Outage | OutageMode | str,
        *,
        path: str | None = None,
        **options: float,
    ) -> Outage:
        """Fail only the next ``count`` API requests (to ``path`` only, if given)."""
        return self.outages.fail_next(count, mode, path=path, **options)

    # -- clock -----------------------------------------------------------------------------
    def set_clock_skew(self, seconds: float) -> None:
        self.clock_skew = timedelta(seconds=seconds)

    def server_time(self) -> datetime:
        """The time the ``Date`` header reports."""
        return self.state.now() + self.clock_skew

    # -- request log -----------------------------------------------------------------------
    def request_count(self, path: str | None = None, method: str | None = None) -> int:
        return self.requests.count(path, method)

    def requests_to(
        self, path: str | None = None, method: str | None = None
    ) -> list[RequestRecord]:
        return self.requests.matching(path, method)

    def clear_requests(self) -> None:
        self.requests.clear()

    async def wait_for_requests(
        self,
        count: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        done: bool = False,
    ) -> list[RequestRecord]:
        """Wait until ``count`` matching API requests arrived (bound it with asyncio.timeout)."""
        return await self.requests.wait_for(count, path=path, method=method, done=done)
