"""One websocket connection to one Z-Wave JS server, shared by every lock on that network.

:class:`ZWaveServer` keeps the connection up in one background task: connect, start listening
(the server sends its whole state), serve events, and after any loss reconnect with the
project's :class:`~drivers.backoff.Backoff`. Each successful connection gets a new
``generation``; locks compare it with the one they last verified to know that they must
re-read the lock (Z-Wave JS does not replay events that happened while nobody listened).

:class:`ServerRegistry` hands out one :class:`ZWaveServer` per URL, reference-counted; a
registry lives per event loop, so the locks of one gateway share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import weakref
from collections.abc import Callable
from datetime import datetime

import aiohttp
from zwave_js_server.client import Client
from zwave_js_server.model.node import Node

from drivers.backoff import Backoff
from drivers.base import WaitClock
from drivers.clock import SystemClock, sleep
from drivers.errors import LockOfflineError

log = logging.getLogger(__name__)


class ServerState(enum.Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    READY = "ready"
    WAITING = "waiting"
    """Between two tries, backing off."""


NodeListener = Callable[[Node, int], None]
"""Called with the lock's fresh :class:`Node` and the connection generation after each connect."""
DropListener = Callable[[datetime], None]


CLIENT_LOGGER = "zwave_js_server"
"""At DEBUG the client logs every websocket message whole, user codes included: Lockgate keeps
that logger at INFO whatever the gateway's own level, so no PIN reaches a log."""


class ZWaveServer:
    def __init__(
        self,
        url: str,
        *,
        clock: WaitClock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        client_log = logging.getLogger(CLIENT_LOGGER)
        if client_log.getEffectiveLevel() < logging.INFO:
            client_log.setLevel(logging.INFO)
        self.url = url
        self._clock = clock or SystemClock()
        self.backoff = backoff or Backoff(0.5, 60.0)
        self.state = ServerState.STOPPED
        self.generation = 0
        self.client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._on_connect: dict[int, list[NodeListener]] = {}
        self._on_drop: list[DropListener] = []
        self.dropped_at: datetime | None = None

    # --- lifetime ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"zwave-server:{self.url}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state = ServerState.STOPPED

    def subscribe(self, node_id: int, on_connect: NodeListener, on_drop: DropListener) -> None:
        self._on_connect.setdefault(node_id, []).append(on_connect)
        self._on_drop.append(on_drop)
        if self.state is ServerState.READY:
            node = self._node_or_none(node_id)
            if node is not None:
                on_connect(node, self.generation)

    def unsubscribe(self, node_id: int, on_connect: NodeListener, on_drop: DropListener) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._on_connect[node_id].remove(on_connect)
        with contextlib.suppress(ValueError):
            self._on_drop.remove(on_drop)

    # --- what locks use ----------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is ServerState.READY and self.client is not None

    async def wait_ready(self, within: float) -> None:
        """Return once connected; :class:`LockOfflineError` after ``within`` seconds."""
        self._wake.set()  # a lock wants the link now: cut a backoff wait short
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: self.ready)
        except TimeoutError:
            raise LockOfflineError(
                f"Z-Wave JS server {self.url} not reachable ({self.state.value})"
            ) from None

    def node(self, node_id: int) -> Node | None:
        return self._node_or_none(node_id) if self.ready else None

    def _node_or_none(self, node_id: int) -> Node | None:
        client = self.client
        if client is None or client.driver is None:
            return None
        return client.driver.controller.nodes.get(node_id)

    # --- the connection loop -----------------------------------------------------------------
    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    await self._serve(session)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # the link's failures: log, back off, try again
                    first = self.backoff.failures == 0
                    log.log(
                        logging.WARNING if first else logging.DEBUG,
                        "Z-Wave JS server %s: %s: %s",
                        self.url,
                        type(err).__name__,
                        err,
                    )
                await self._set_state(ServerState.WAITING)
                self._wake.clear()
                await sleep(self._clock, self.backoff.next_delay(), self._wake)

    async def _serve(self, session: aiohttp.ClientSession) -> None:
        await self._set_state(ServerState.CONNECTING)
        client = Client(self.url, session)
        await client.connect()
        ready = asyncio.Event()
        listener = asyncio.create_task(client.listen(ready), name=f"zwave-listen:{self.url}")
        try:
            waiter = asyncio.create_task(ready.wait())
            done, _ = await asyncio.wait({waiter, listener}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                listener.result()  # raises what ended the listener
                raise ConnectionError("the server closed before sending its state")
            self.client = client
            self.generation += 1
            self.backoff.reset()
            await self._set_state(ServerState.READY)
            log.info("Z-Wave JS server %s: connected (generation %d)", self.url, self.generation)
            for node_id, listeners in list(self._on_connect.items()):
                node = self._node_or_none(node_id)
                if node is not None:
                    for on_connect in list(listeners):
                        on_connect(node, self.generation)
            await listener
            raise ConnectionError("connection closed")
        finally:
            self.client = None
            if self.generation and self.state is ServerState.READY:
                self.dropped_at = self._clock.now()
                for on_drop in list(self._on_drop):
                    on_drop(self.dropped_at)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _set_state(self, state: ServerState) -> None:
        self.state = state
        async with self._changed:
            self._changed.notify_all()


class ServerRegistry:
    """One :class:`ZWaveServer` per URL, reference-counted."""

    def __init__(self) -> None:
        self._servers: dict[str, tuple[ZWaveServer, int]] = {}

    def acquire(self, url: str, *, clock: WaitClock | None, backoff: Backoff) -> ZWaveServer:
        entry = self._servers.get(url)
        if entry is None:
            server = ZWaveServer(url, clock=clock, backoff=backoff)
            self._servers[url] = (server, 1)
            server.start()
            return server
        server, refs = entry
        self._servers[url] = (server, refs + 1)
        return server

    async def release(self, server: ZWaveServer) -> None:
        entry = self._servers.get(server.url)
        if entry is None or entry[0] is not server:
            return
        refs = entry[1] - 1
        if refs:
            self._servers[server.url] = (server, refs)
            return
        del self._servers[server.url]
        await server.stop()

    def get(self, url: str) -> ZWaveServer | None:
        entry = self._servers.get(url)
        return entry[0] if entry else None


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ServerRegistry] = (
    weakref.WeakKeyDictionary()
)


def default_server_registry() -> ServerRegistry:
    loop = asyncio.get_running_loop()
    registry = _per_loop.get(loop)
    if registry is None:
        registry = _per_loop[loop] = ServerRegistry()
    return registry
