"""Round-trip latency of the management plane against a bare aiomqtt echo, same broker, same run.

    .venv/bin/python -m bench.bench_mqtt [--rounds 5] [--per-round 200]

Starts a Mosquitto on a free port (persistence, TCP_NODELAY), a gateway with one simulated lock
and its management plane, and in the same event loop a bare aiomqtt echo responder. One
requester (MQTT v5, response topic + correlation data, QoS 1 both ways, as ``lockgate ctl``
does) times three things, interleaved in rounds so drift hits all alike:

* ``echo``   — the requester's message republished by a bare aiomqtt client: the floor;
* ``status`` — an unsigned read: parse, validate, build the gateway state, answer;
* ``unlock`` — a signed unlock of the simulated lock: Ed25519 signing (client side) and
  verification, the replay check (one persisted floor write), the lock's exclusive lock, the
  driver's unlock and status, the answer;
* ``commit`` — one ``synchronous=FULL`` SQLite commit of one row, in a database beside the
  gateway's store (same disk): what an unlock must wait for (its replay record is durable
  before the door moves), so the unlock's floor is ``echo + commit``.

Prints median and p99 per case and each case's ratio to the echo, and the unlock's ratio to
its floor (``echo + commit``, medians of the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt
from lockgate_sim.broker import Mosquitto
from paho.mqtt.packettypes import PacketTypes

from gateway.mqtt.connection import make_client, v5_properties
from gateway.timetrust import kernel_clock_synchronised
from tests.mqtt.harness import (
    Requester,
    broker_options,
    running_site,
    write_operator_keys,
)

ECHO_TOPIC = "bench/echo"


async def echo_responder(client: aiomqtt.Client) -> None:
    async for message in client.messages:
        props = message.properties
        reply_to = getattr(props, "ResponseTopic", None)
        if reply_to is None:
            continue
        out = v5_properties(PacketTypes.PUBLISH, CorrelationData=props.CorrelationData)  # type: ignore[union-attr]
        await client.publish(reply_to, message.payload, qos=1, properties=out)


def stub() -> bool:
    return True


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def bench(
    rounds: int, per_round: int, warmup: int, real_kernel_check: bool
) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        operators = write_operator_keys(tmp)
        olga = operators.signer("olga")
        async with (
            Mosquitto(tmp / "broker") as broker,
            running_site(
                tmp / "gw",
                broker,
                operators,
                mqtt={"state_interval_s": 60},
                kernel_synchronised=kernel_clock_synchronised if real_kernel_check else stub,
            ) as site,
            make_client(broker_options(broker), f"echo-{uuid.uuid4().hex[:6]}") as echo,
            Requester(broker_options(broker), site.topics) as req,
        ):
            if not site.gw.trust.assess().trusted:
                raise SystemExit(
                    "bench_mqtt: this machine's clock is not trusted (the kernel says it is not "
                    "synchronised), so the gateway refuses unlock (clock_untrusted); "
                    "run with --stub-kernel-clock"
                )
            await echo.subscribe(ECHO_TOPIC, qos=1)
            echo_task = asyncio.create_task(echo_responder(echo), name="echo")
            try:
                echo_body = json.dumps({"transaction": "x", "args": {}}).encode()

                async def run_echo() -> None:
                    response = await req.raw("echo", echo_body, topic=ECHO_TOPIC)
                    assert response["transaction"] == "x"

                async def run_status() -> None:
                    response = await req.request("status")
                    assert response["status"] == "ok", response

                async def run_unlock() -> None:
                    response = await req.request("unlock", {"lock_id": "front"}, sign_as=olga)
                    assert response["status"] == "ok", response

                floor_db = sqlite3.connect(tmp / "gw" / "commit-floor.db", isolation_level=None)
                floor_db.execute("PRAGMA journal_mode=WAL")
                floor_db.execute("PRAGMA synchronous=FULL")
                floor_db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")

                async def run_commit() -> None:
                    floor_db.execute("BEGIN IMMEDIATE")
                    floor_db.execute("INSERT OR REPLACE INTO meta VALUES ('floor', ?)",
                                     (str(time.time_ns()),))
                    floor_db.execute("COMMIT")

                cases = {"echo": run_echo, "status": run_status, "unlock": run_unlock,
                         "commit": run_commit}
                for run in cases.values():
                    for _ in range(warmup):
                        await run()
                times: dict[str, list[float]] = {name: [] for name in cases}
                for _ in range(rounds):
                    for name, run in cases.items():
                        for _ in range(per_round):
                            t0 = time.perf_counter()
                            await run()
                            times[name].append((time.perf_counter() - t0) * 1000)
                return times
            finally:
                echo_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await echo_task


def report(times: dict[str, list[float]]) -> str:
    echo_med = statistics.median(times["echo"])
    echo_p99 = percentile(times["echo"], 99)
    lines = [
        f"{'case':<8} {'n':>6} {'median ms':>10} {'p99 ms':>8} {'x echo (median)':>16} "
        f"{'x echo (p99)':>13}"
    ]
    for name, values in times.items():
        med, p99 = statistics.median(values), percentile(values, 99)
        lines.append(
            f"{name:<8} {len(values):>6} {med:>10.3f} {p99:>8.3f} {med / echo_med:>16.2f} "
            f"{p99 / echo_p99:>13.2f}"
        )
    if "commit" in times:
        floor = echo_med + statistics.median(times["commit"])
        lines.append(
            f"unlock floor (echo + one durable commit) {floor:.3f} ms: unlock "
            f"{statistics.median(times['unlock']) / floor:.2f}x its floor (median)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--stub-kernel-clock",
        action="store_true",
        help="answer the clock-trust check's adjtimex question with a stub (the default when "
        "the kernel says its clock is not synchronised: the gateway would refuse unlock)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run: checks the bench runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.per_round, args.warmup = 1, 10, 3
    logging.basicConfig(level=logging.ERROR)
    real = not args.stub_kernel_clock and kernel_clock_synchronised() is True
    times = asyncio.run(bench(args.rounds, args.per_round, args.warmup, real))
    print("MQTT v5 request/response round trips, QoS 1 both ways, Mosquitto on loopback,")
    print(f"{args.rounds} interleaved rounds of {args.per_round} per case; clock trust: "
          f"{kernel_note(real)}")
    print(report(times))
    return 0


def kernel_note(real: bool) -> str:
    if real:
        return "real adjtimex check"
    return "adjtimex answer stubbed (this machine's kernel clock is not NTP-synchronised)"


def measure(rounds: int = 5, per_round: int = 200, warmup: int = 50) -> dict[str, float]:
    """Median and p99 (ms) per case, for bench/run_all.py. The kernel's clock-sync answer is
    stubbed only when the kernel says it is not synchronised (``real_kernel`` 0)."""
    logging.basicConfig(level=logging.ERROR)
    real = kernel_clock_synchronised() is True
    times = asyncio.run(bench(rounds, per_round, warmup, real))
    out: dict[str, float] = {"real_kernel": float(real)}
    for name, values in times.items():
        out[name] = statistics.median(values)
        out[f"{name}_p99"] = percentile(values, 99)
    return out


if __name__ == "__main__":
    sys.exit(main())
