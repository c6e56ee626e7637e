"""From a card at an OSDP reader to the strike command at the reader, against libosdp alone.

One rig, one run: libosdp's own ``PeripheralDevice`` behind a real pty, opened with pyserial.

* **floor** — libosdp alone: its ``ControlPanel`` (the package's own wrapper, 20 ms refresh,
  secure channel) gets the card event and submits the strike command from inside its event
  callback, on its own thread; no decision, no asyncio. This is libosdp's own round trip from
  an event in to a command out.
* **gateway** — the whole gateway (fake cloud, store, validator) with the ``osdp`` driver on
  the same reader: card event -> asyncio -> the validator's decision -> strike command.

Each figure is from the card's ``submit_event`` on the reader to the reader's command callback
for the output command. The gateway's own decision (``ctx.decide``, the validator with its
store write in one SQLite transaction) is timed separately, and the same decision without
its record (a dry run) beside it.

    .venv/bin/python -m bench.bench_osdp [--cards 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "firmware-sim"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import osdp  # noqa: E402
import serial  # noqa: E402
from lockgate_sim.osdp_readers import OsdpBus, SimReader  # noqa: E402

from drivers.base import AccessAnswer, AccessRequest, CredentialKind  # noqa: E402
from drivers.osdp.driver import OsdpDriver  # noqa: E402
from drivers.osdp.panel import ReaderHealth  # noqa: E402
from drivers.osdp.wiegand import H10301  # noqa: E402
from drivers.registry import default_registry  # noqa: E402
from fakecloud.server import FakeCloudServer  # noqa: E402
from gateway.clock import FakeClock  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.daemon import Gateway  # noqa: E402

KEY = bytes(range(16))
CARD_NUMBER = 4660
FACILITY = 18
STRIKE = {"command": osdp.Command.Output, "output_no": 0, "control_code": 5, "timer_count": 50}


def is_output(c: dict[str, Any]) -> bool:
    return bool(c["command"] == osdp.Command.Output)  # osdp is untyped: the == is Any


def write_secret(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return path


async def present(reader: SimReader) -> float:
    """Present the card; seconds until the strike command reached the reader."""
    after = len(reader.commands)
    t0 = time.monotonic()
    reader.present_card(H10301, CARD_NUMBER, FACILITY)
    got = await reader.wait_command(is_output, after=after, within=5.0)
    # Let the rest of the answer (LED, buzzer) through before the next card.
    await reader.wait_command(lambda c: c["command"] == osdp.Command.Buzzer, after=after)
    return got.at - t0


class _PortChannel(osdp.Channel):  # type: ignore[misc]
    def __init__(self, path: str) -> None:
        super().__init__()
        self.port = serial.Serial(path, 115200, timeout=0)

    def read(self, n: int) -> bytes:
        return bytes(self.port.read(n))

    def write(self, buf: bytes) -> int:
        return int(self.port.write(bytes(buf)) or 0)

    def flush(self) -> None:
        return None


async def floor(bus: OsdpBus, reader: SimReader, cards: int) -> list[float]:
    channel = _PortChannel(bus.path)
    info = osdp.PDInfo(1, channel, scbk=KEY, flags=[osdp.LibFlag.EnforceSecure])
    cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Error)

    def on_event(pd: int, event: dict[str, Any]) -> int:
        if event.get("event") == osdp.Event.CardRead:
            # Already under the wrapper's lock (inside refresh): call libosdp directly.
            cp.ctx.submit_command(pd, STRIKE)
            cp.ctx.submit_command(pd, {"command": osdp.Command.Buzzer, "reader": 0,
                                       "control_code": 2, "on_count": 1, "off_count": 1,
                                       "rep_count": 1})
        return 0

    cp.set_event_handler(on_event)
    cp.start()
    try:
        if not await asyncio.to_thread(cp.sc_wait, 1, 10):
            raise RuntimeError("libosdp floor: no secure channel")
        return [await present(reader) for _ in range(cards)]
    finally:
        cp.teardown()
        channel.port.close()


async def gateway(
    bus: OsdpBus, reader: SimReader, cards: int
) -> tuple[list[float], list[float], list[float]]:
    clock = FakeClock(datetime.now(UTC))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        async with FakeCloudServer(now=clock.now) as cloud:
            space = cloud.state.add_space(name="A")["space_id"]
            user = cloud.state.add_user_identity(full_name="Bench")["user_identity_id"]
            cloud.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "card", "card_number": str(CARD_NUMBER)}],
            )
            key_file = write_secret(tmp / "reader.scbk", KEY.hex())
            cfg = parse_config(
                {
                    "gateway_id": "bench",
                    "cloud": {
                        "endpoint": cloud.url,
                        "api_key": {"file": str(write_secret(tmp / "api", cloud.api_key))},
                    },
                    "store": {
                        "path": str(tmp / "lockgate.db"),
                        "key": {"file": str(tmp / "store.key")},
                    },
                    "locks": [
                        {
                            "id": "door",
                            "space_ids": [space],
                            "driver": {
                                "type": "osdp",
                                "port": bus.path,
                                "baud": 115200,
                                "address": 1,
                                "key": {"file": str(key_file)},
                            },
                        }
                    ],
                },
                default_registry(),
                "bench",
            )
            async with Gateway(
                cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True
            ) as gw, gw.serving():
                await gw.sync_loop.sync_now()
                driver = gw.locks["door"].handle.driver
                assert isinstance(driver, OsdpDriver)
                assert driver.panel is not None
                async with asyncio.timeout(15):
                    await driver.panel.wait_health(1, ReaderHealth.ONLINE)
                decisions: list[float] = []
                decide = driver.ctx.decide

                async def timed(request: AccessRequest) -> AccessAnswer:
                    t0 = time.perf_counter()
                    answer = await decide(request)
                    decisions.append(time.perf_counter() - t0)
                    if not answer.allow:
                        raise RuntimeError(f"bench card denied: {answer.reason}")
                    return answer

                driver.ctx.decide = timed
                lat = [await present(reader) for _ in range(cards)]
                judged: list[float] = []  # the same decision without its record (dry run)
                for _ in range(cards):
                    t0 = time.perf_counter()
                    gw.validator.decide(
                        CredentialKind.CARD, str(CARD_NUMBER).encode(), "door", dry_run=True
                    )
                    judged.append(time.perf_counter() - t0)
                return lat, decisions, judged


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<34} n={len(ms):>4}  median {statistics.median(ms):8.2f} ms"
        f"  p99 {pct(ms, 0.99):8.2f} ms"
    )


async def main_async(cards: int) -> None:
    with OsdpBus() as bus:
        reader = bus.add(1, KEY)
        floor_lat = await floor(bus, reader, cards)
        gw_lat, decisions, judged = await gateway(bus, reader, cards)
    print(f"OSDP card -> strike command at the reader (pty, 115200 baud, {cards} cards each)")
    print(line("libosdp alone (floor)", floor_lat))
    print(line("gateway (validator decides)", gw_lat))
    print(line("  of which the decision (recorded)", decisions))
    print(line("  the same decision, dry run", judged))
    ratio_med = statistics.median(gw_lat) / statistics.median(floor_lat)
    ratio_p99 = pct(gw_lat, 0.99) / pct(floor_lat, 0.99)
    print(f"gateway / floor: median {ratio_med:.2f}x, p99 {ratio_p99:.2f}x (goal <= 1.5x)")
    print(
        f"decision median {statistics.median(decisions) * 1000:.3f} ms, "
        f"p99 {pct(decisions, 0.99) * 1000:.3f} ms (goal <= 1 ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=60)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the bench runs")
    ns = ap.parse_args()
    if ns.quick:
        ns.cards = 3
    asyncio.run(main_async(ns.cards))


if __name__ == "__main__":
    main()
