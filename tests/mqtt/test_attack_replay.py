"""Attacker's side of issue 10, finding 2: a recorded signed ``unlock`` replayed after the
gateway's wall clock stepped back.

Whoever reads request topics (the broker; with the documented ACL every operator and Home
Assistant) can record a signed unlock. Nonces used to be forgotten by wall-clock age and the
per-operator floor was read only at start, so once the clock stepped back (an NTP step, a
spoofed SNTP answer) the recording looked fresh and unknown again, and opened the door.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lockgate_sim.broker import Mosquitto

from drivers.base import BoltState
from gateway.clock import FakeClock
from gateway.mqtt.auth import sign
from tests.mqtt.harness import Operators, Requester, Site, broker_options, running_site


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def recorded_request(site: Site, command: str, args: dict[str, Any], ts: int) -> bytes:
    """A request exactly as the broker saw it go by (signed by the operator olga)."""
    name, key = site.operators.signer("olga")
    auth = sign(
        key,
        name,
        command,
        args,
        gateway_id=site.topics.gateway_id,
        topic=site.topics.request(command),
        ts=ts,
    )
    return json.dumps({"transaction": uuid.uuid4().hex, "args": args, "auth": auth}).encode()


async def test_attack_recorded_unlock_replayed_after_a_clock_step_back_is_refused(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    synchronised = [True]
    async with (
        running_site(
            tmp_path / "gw",
            broker,
            operators,
            clock=clock,
            kernel_synchronised=lambda: synchronised[0],
        ) as site,
        Requester(broker_options(broker), site.topics, identity=site.identity) as r,
    ):
        t0 = clock.now()
        unlock = recorded_request(site, "unlock", {"lock_id": "front"}, ms(t0))
        assert (await r.raw("unlock", unlock))["status"] == "ok"
        assert site.bolt() is BoltState.UNLOCKED

        # Time goes on; the operator locks the door again (a minute later on the wall clock).
        clock.advance(60)
        relock = recorded_request(site, "lock", {"lock_id": "front"}, ms(clock.now()))
        assert (await r.raw("lock", relock))["status"] == "ok"
        assert site.bolt() is BoltState.LOCKED

        # A spoofed SNTP answer: the wall clock steps back to just after the recording, and
        # the kernel then says it is synchronised again, so the gateway trusts its clock (the
        # time floor is older). The attacker replays the recording.
        clock.step((t0 + timedelta(seconds=1) - clock.now()).total_seconds())
        synchronised[0] = False
        assert not site.gw.trust.assess().trusted
        synchronised[0] = True
        assert site.gw.trust.assess().trusted, "the step looks like NTP's to the gateway"
        answer = await r.raw("unlock", unlock)
        assert answer["status"] == "error", "the recorded unlock opened the door again"
        assert answer["error"]["code"] == "replayed"
        assert site.bolt() is BoltState.LOCKED


async def test_attack_unlock_refused_while_the_clock_is_untrusted(
    tmp_path: Path, broker: Mosquitto, operators: Operators
) -> None:
    synchronised = [False]
    async with (
        running_site(
            tmp_path / "gw", broker, operators, kernel_synchronised=lambda: synchronised[0]
        ) as site,
        Requester(broker_options(broker), site.topics, identity=site.identity) as r,
    ):
        assert not site.gw.trust.assess().trusted
        unlock = recorded_request(site, "unlock", {"lock_id": "front"}, ms(datetime.now(UTC)))
        answer = await r.raw("unlock", unlock)
        assert answer["status"] == "error", "an unlock ran on a clock the gateway cannot trust"
        assert answer["error"]["code"] == "clock_untrusted"
        assert site.bolt() is BoltState.LOCKED
        # Securing a door is never refused.
        lock = recorded_request(site, "lock", {"lock_id": "front"}, ms(datetime.now(UTC)))
        assert (await r.raw("lock", lock))["status"] == "ok"
        # The refusal recorded nothing: once the clock is trusted the same request is served.
        synchronised[0] = True
        assert (await r.raw("unlock", unlock))["status"] == "ok"
        assert site.bolt() is BoltState.UNLOCKED
