"""OSDP tests: the real driver on real pyserial and a real pty, libosdp's own readers behind it.

The suite-wide ``tests/conftest.py`` checks for leaked tasks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "firmware-sim"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from lockgate_sim.osdp_readers import OsdpBus  # noqa: E402

from drivers.base import AccessAnswer, AccessRequest, SecurityAlert  # noqa: E402
from drivers.osdp.driver import OsdpDriver  # noqa: E402
from drivers.osdp.options import OsdpOptions  # noqa: E402
from drivers.osdp.panels import PanelRegistry  # noqa: E402
from lockgate.testing import make_context  # noqa: E402


def site_key(n: int) -> bytes:
    """A distinct 16-byte key per reader (tests only)."""
    return bytes((n * 37 + i * 11) & 0xFF for i in range(16))


def write_key(path: Path, key: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return path


def reader_options(bus: OsdpBus, address: int, key_file: Path, **kw: Any) -> OsdpOptions:
    return OsdpOptions(
        port=bus.path,
        baud=115200,
        address=address,
        key={"file": str(key_file)},
        **({"revive_min": 0.5, "revive_max": 2.0} | kw),
    )


@dataclass
class Decisions:
    """A decider that records requests and answers from a table of secrets."""

    allow: dict[bytes, str] = field(default_factory=dict)
    requests: list[AccessRequest] = field(default_factory=list)

    async def __call__(self, request: AccessRequest) -> AccessAnswer:
        self.requests.append(request)
        if request.secret in self.allow:
            return AccessAnswer(True, "valid", self.allow[request.secret])
        return AccessAnswer(False, "unknown_credential")


@pytest.fixture
def bus() -> Iterator[OsdpBus]:
    with OsdpBus() as b:
        yield b


@pytest.fixture
async def panels() -> PanelRegistry:
    return PanelRegistry()


@dataclass
class Rig:
    bus: OsdpBus
    panels: PanelRegistry
    tmp: Path
    stack: AsyncExitStack
    decisions: Decisions = field(default_factory=Decisions)
    alerts: list[SecurityAlert] = field(default_factory=list)

    async def reader(
        self,
        lock_id: str,
        address: int,
        *,
        key: bytes | None = None,
        reader_key: bytes | str | None = "same",
        **kw: Any,
    ) -> OsdpDriver:
        """A simulated reader at ``address`` and the driver for it (started)."""
        key = key if key is not None else site_key(address)
        on_reader = key if reader_key == "same" else reader_key
        assert on_reader is None or isinstance(on_reader, bytes)
        self.bus.add(address, on_reader)
        key_file = write_key(self.tmp / f"{lock_id}.scbk", key)
        opts = reader_options(self.bus, address, key_file, **kw)
        ctx = make_context(decide=self.decisions)
        ctx.alert = self.alerts.append
        driver = OsdpDriver(lock_id, opts, ctx, panels=self.panels)
        await self.stack.enter_async_context(driver)
        return driver


@pytest.fixture
async def rig(bus: OsdpBus, panels: PanelRegistry, tmp_path: Path) -> AsyncIterator[Rig]:
    async with AsyncExitStack() as stack:
        yield Rig(bus, panels, tmp_path, stack)
