"""Mobile keys end to end: a grant with a mobile_key in the (fake) cloud, its public key on the
BLE locks through the daemon, a simulated phone over the simulated radio opening the door
inside the window only; a replayed exchange and a revoked key refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from lockgate_sim.ble.backend import BumbleBackends, backends_for
from lockgate_sim.ble.central import BumbleCentral
from lockgate_sim.ble.phone import SimPhone, replay

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from tests.e2e.site import Site, running_site


@asynccontextmanager
async def phone_radio(site: Site, name: str) -> AsyncIterator[BumbleBackends]:
    central = BumbleCentral(site.radio.radio.device(name))
    await central.start()
    try:
        yield backends_for(central)
    finally:
        await central.close()


async def test_phone_opens_inside_window_replay_and_revocation_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_site(tmp_path, clock, link="ble") as site,
        phone_radio(site, "jane-phone") as radio,
    ):
        phone = SimPhone("jane", radio, timeout=8.0)
        start = clock.now() + timedelta(minutes=10)
        grant = site.grant(
            space=site.space_a,
            modes=[
                {
                    "mode": "mobile_key",
                    "extra": {"mobile_key": {"public_key": phone.public_key_text}},
                }
            ],
            starts_at=start,
            ends_at=start + timedelta(hours=1),
        )
        (method_id,) = grant["access_method_ids"]
        await site.sync()
        # BLE locks enforce windows: the key goes on ahead of starts_at, with its window.
        for lock_id in ("front", "back"):
            await site.until_held(lock_id, {method_id}, wait=5)
        stored = site.lock("front").list_credentials()[0]
        assert stored.kind is CredentialKind.MOBILE_KEY
        front = site.radio.locks["front"].device_id

        result = await phone.open(device_id=front)
        assert (result.allow, result.reason) == (False, "outside_window")
        clock.set(start)
        result = await phone.open(device_id=front)
        assert (result.allow, result.reason) == (True, "valid")

        async with phone_radio(site, "mallory") as attacker:
            replayed = await replay(attacker, phone.history[-1], device_id=front)
        assert (replayed.allow, replayed.reason) == (False, "bad_proof")

        # The phone at a lock outside the grant: that lock asks the gateway, which refuses.
        result = await phone.open(device_id=site.radio.locks["office"].device_id)
        assert (result.allow, result.reason) == (False, "not_for_this_entrance")

        site.cloud.state.methods.revoke(method_id)
        await site.sync()
        for lock_id in ("front", "back"):
            await site.until_held(lock_id, set(), wait=5)
        result = await phone.open(device_id=front)
        assert (result.allow, result.reason) == (False, "revoked")
        # no key material or PIN in the outbox
        assert phone.public_key_text not in repr(site.outbox())
