"""Attacker's side of issue 10, finding 3: ``test_credential`` as a PIN oracle.

The audit's operator (not admin) tried all 10,000 four-digit PINs in about a minute: every
valid PIN came back with the user it belongs to, no lockout, no access event. Here an operator
runs the same guessing loop over MQTT against a real Mosquitto and a gateway with one valid
six-digit PIN.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lockgate_sim.broker import Mosquitto

from drivers.base import CredentialKind
from tests.mqtt.harness import Operators, Requester, Seal, Site, broker_options, running_site
from tests.mqtt.test_commands import PIN, load_one_code

IDENTIFYING = {"access_method_id", "access_grant_id", "user_identity_id", "detail"}


def guesses(n: int) -> list[str]:
    return [f"{i:06d}" for i in range(n)]


async def dry_run(r: Requester, site: Site, who: str, pin: str) -> dict[str, Any]:
    return await r.request(
        "test_credential",
        {"lock_id": "front", "secret": Seal(pin)},
        sign_as=site.operators.signer(who),
    )


def events_of_dry_runs(site: Site) -> list[dict[str, Any]]:
    return [
        e.payload
        for e in site.gw.store.outbox.entries()
        if e.payload["kind"] == "credential_tested"
    ]


@pytest.fixture
async def fast_site(tmp_path: Path, broker: Mosquitto, operators: Operators) -> AsyncIterator[Site]:
    """A gateway whose dry-run rate limit is out of the way, to show the lockout alone."""
    mqtt = {"test_credential_per_minute": 10_000}
    async with running_site(tmp_path / "gw", broker, operators, mqtt=mqtt) as s:
        yield s


async def test_attack_guessing_loop_is_rate_limited_and_learns_no_identities(
    site: Site, requester: Requester
) -> None:
    await load_one_code(site)
    # An admin learns whose credential it is (before the guessing below locks the keypad out).
    full = await dry_run(requester, site, "ada", PIN)
    assert full["data"]["user_identity_id"] == "user-1"
    answers = [await dry_run(requester, site, "olga", pin) for pin in [PIN, *guesses(5)]]
    for answer in answers:
        assert answer["status"] == "ok", answer
        assert not IDENTIFYING & set(answer["data"]), "an operator learnt whose credential it is"
    assert answers[0]["data"]["allow"] is True
    limited = await dry_run(requester, site, "olga", "000099")
    assert limited["status"] == "error", "a seventh dry run within the minute was answered"
    assert limited["error"]["code"] == "rate_limited"
    # The limit is the operator's own: the admin still has theirs.
    assert (await dry_run(requester, site, "ada", PIN))["status"] == "ok"
    # Every dry run answered is an access event, naming the operator but not the user.
    events = events_of_dry_runs(site)
    assert len(events) == 8
    assert {e["detail"] for e in events} == {"dry run by operator olga", "dry run by operator ada"}
    assert not any(IDENTIFYING - {"detail"} & set(e) for e in events)
    assert PIN not in json.dumps(events)


async def test_attack_guesses_through_the_dry_run_lock_the_keypad_out(
    fast_site: Site, operators: Operators
) -> None:
    site = fast_site
    await load_one_code(site)
    async with Requester(broker_options(site.broker), site.topics, identity=site.identity) as r:
        for pin in guesses(5):  # the lock's threshold (lockout_failures) of wrong PINs
            answer = await dry_run(r, site, "olga", pin)
            assert answer["data"]["reason"] == "unknown_credential"
        found = await dry_run(r, site, "olga", PIN)
    assert found["data"]["allow"] is False, "the guessing loop found the valid PIN"
    assert found["data"]["reason"] == "locked_out"
    # The same lockout holds at the real keypad: guessing by dry run is guessing at the door.
    at_door = site.gw.decide(CredentialKind.CODE, PIN.encode(), "front", dry_run=False)
    assert (at_door.allow, at_door.reason) == (False, "locked_out")
