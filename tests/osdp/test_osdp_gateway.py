"""OSDP readers under the whole gateway: a grant in the (fake) cloud, cards and PINs at real
libosdp readers on a pty, decided by the gateway's validator, recorded as access events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import osdp
import pytest
from lockgate_sim.osdp_readers import OsdpBus, SimReader

from drivers.osdp.driver import OsdpDriver
from drivers.osdp.errors import ProvisioningRefusedError
from drivers.osdp.panel import ReaderHealth
from drivers.osdp.wiegand import H10301
from drivers.registry import default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.daemon import Gateway
from tests.e2e.site import site_config, write_secret
from tests.osdp.conftest import site_key, write_key

CARD = ("4660", 18)
ADDRESSES = {"front": 1, "office": 2, "side": 3}
PIN = "482913"


@dataclass
class OsdpSite:
    cloud: FakeCloudServer
    gateway: Gateway
    bus: OsdpBus
    clock: FakeClock
    space_a: str
    space_b: str
    user: str

    def reader(self, lock_id: str) -> SimReader:
        return self.bus.readers[ADDRESSES[lock_id]]

    def driver(self, lock_id: str) -> OsdpDriver:
        driver = self.gateway.locks[lock_id].handle.driver
        assert isinstance(driver, OsdpDriver)
        return driver

    async def sync(self) -> None:
        async with asyncio.timeout(5):
            await self.gateway.sync_loop.sync_now()

    def decisions(self, lock_id: str) -> list[dict[str, Any]]:
        return [
            e.payload
            for e in self.gateway.store.outbox.entries()
            if e.payload.get("lock_id") == lock_id
            and e.payload.get("kind") in ("access_allowed", "access_denied")
        ]

    async def card(self, lock_id: str) -> dict[str, Any]:
        """Present the card at a reader; returns the decision recorded for it."""
        return await self._input(lock_id, lambda r: r.present_card(H10301, int(CARD[0]), CARD[1]))

    async def pin(self, lock_id: str, pin: str = PIN) -> dict[str, Any]:
        return await self._input(lock_id, lambda r: r.press(pin.encode() + b"#"))

    async def _input(self, lock_id: str, act: Any) -> dict[str, Any]:
        reader = self.reader(lock_id)
        before, after = len(self.decisions(lock_id)), len(reader.commands)
        act(reader)
        # The last command of either answer is the buzzer: wait for it, then read the record.
        await reader.wait_command(lambda c: c["command"] == osdp.Command.Buzzer, after=after)
        decisions = self.decisions(lock_id)
        assert len(decisions) == before + 1
        return decisions[-1]


@asynccontextmanager
async def osdp_site(
    tmp: Path, clock: FakeClock, *, new_reader: bool = False
) -> AsyncIterator[OsdpSite]:
    """Readers ``front`` (space A) and ``office`` (space B); with ``new_reader`` also ``side``
    (space A), a reader fresh from the box: install mode, only the default key."""
    with OsdpBus() as bus:
        async with FakeCloudServer(now=clock.now) as cloud:
            state = cloud.state
            space_a = state.add_space(name="Building A")["space_id"]
            space_b = state.add_space(name="Building B")["space_id"]
            user = state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
            locks = []
            readers = [("front", space_a), ("office", space_b)]
            readers += [("side", space_a)] if new_reader else []
            for lock_id, space in readers:
                address = ADDRESSES[lock_id]
                bus.add(address, None if lock_id == "side" else site_key(address))
                key_file = write_key(tmp / f"{lock_id}.scbk", site_key(address))
                driver = {
                    "type": "osdp",
                    "port": bus.path,
                    "baud": 115200,
                    "address": address,
                    "key": {"file": str(key_file)},
                }
                locks.append({"id": lock_id, "space_ids": [space], "driver": driver})
            cfg = site_config(tmp, cloud.url, write_secret(tmp / "api-key", cloud.api_key), locks)
            async with Gateway(
                cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True
            ) as gw, gw.serving():
                site = OsdpSite(cloud, gw, bus, clock, space_a, space_b, user)
                for lock_id in ("front", "office"):  # (not the new reader: it has no key yet)
                    panel = site.driver(lock_id).panel
                    assert panel is not None
                    async with asyncio.timeout(5):
                        await panel.wait_health(site.reader(lock_id).address, ReaderHealth.ONLINE)
                await site.sync()
                yield site


async def test_card_and_pin_from_a_grant_open_the_right_door_in_the_window(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with osdp_site(tmp_path, clock) as site:
        start = clock.now() + timedelta(minutes=30)
        grant = site.cloud.state.grants.create(
            user_identity_id=site.user,
            space_ids=[site.space_a],
            requested_access_methods=[
                {"mode": "card", "card_number": CARD[0]},
                {"mode": "code", "code": PIN},
            ],
            starts_at=start,
            ends_at=start + timedelta(hours=2),
        )
        card_id, code_id = grant["access_method_ids"]
        await site.sync()
        front = site.reader("front")

        # Before the window: red, no strike, recorded with its reason.
        assert (await site.card("front"))["reason"] == "outside_window"
        assert (await site.pin("front"))["reason"] == "outside_window"
        assert front.outputs() == []

        # In the window: the strike for its configured 5 s, the card's method on record.
        clock.set(start + timedelta(minutes=1))
        allowed = await site.card("front")
        assert (allowed["kind"], allowed["reason"]) == ("access_allowed", "valid")
        assert (allowed["access_method_id"], allowed["credential_kind"]) == (card_id, "card")
        assert [c.command["timer_count"] for c in front.outputs()] == [50]
        allowed = await site.pin("front")
        assert (allowed["access_method_id"], allowed["reason"]) == (code_id, "valid")
        assert len(front.outputs()) == 2

        # The wrong reader: another space.
        assert (await site.card("office"))["reason"] == "not_for_this_entrance"
        assert (await site.pin("office"))["reason"] == "not_for_this_entrance"
        assert site.reader("office").outputs() == []

        # The cloud down: the gateway still decides from what it holds.
        site.cloud.control.set_outage("refuse")
        assert (await site.card("front"))["reason"] == "valid"
        assert len(front.outputs()) == 3
        site.cloud.control.clear_outage()

        # Deleted in the cloud: refused as revoked after the next sync.
        site.cloud.state.grants.delete(grant["access_grant_id"])
        await site.sync()
        assert (await site.card("front"))["reason"] == "revoked"
        assert (await site.pin("front"))["reason"] == "revoked"
        assert len(front.outputs()) == 3

        # Nothing pushed to a reader, and no secret in any record.
        assert not any(site.gateway.store.sync_states.counts("front").values())
        text = repr(site.gateway.store.outbox.entries())
        assert PIN not in text and f'"{CARD[0]}"' not in text


async def test_a_pin_guesser_is_locked_out_at_the_reader(tmp_path: Path, clock: FakeClock) -> None:
    async with osdp_site(tmp_path, clock) as site:
        site.cloud.state.grants.create(
            user_identity_id=site.user,
            space_ids=[site.space_a],
            requested_access_methods=[{"mode": "code", "code": PIN}],
        )
        await site.sync()
        for guess in ("111111", "222222", "333333", "444444", "555555"):
            assert (await site.pin("front", guess))["reason"] == "unknown_credential"
        assert (await site.pin("front"))["reason"] == "locked_out"
        assert site.reader("front").outputs() == []


async def test_a_new_reader_is_provisioned_through_the_gateway(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with osdp_site(tmp_path, clock, new_reader=True) as site:
        site.cloud.state.grants.create(
            user_identity_id=site.user,
            space_ids=[site.space_a],
            requested_access_methods=[{"mode": "card", "card_number": CARD[0]}],
        )
        await site.sync()
        side = site.driver("side")
        assert side.panel is not None
        async with asyncio.timeout(5):  # on the default key: reported, never online
            await side.panel.wait_health(3, ReaderHealth.KEY_REJECTED)
        assert not site.gateway.locks["side"].handle.connected
        site.reader("side").present_card(H10301, int(CARD[0]), CARD[1])

        await site.gateway.commission("side", "install")
        assert site.gateway.locks["side"].handle.connected
        assert site.reader("side").key == site_key(3)
        # The card presented before the key never counted; now it opens the door.
        assert site.decisions("side") == []
        assert (await site.card("side"))["reason"] == "valid"
        # Once keyed, provisioning again is refused and changes nothing.
        with pytest.raises(ProvisioningRefusedError):
            await site.gateway.commission("side", "install")
        assert site.reader("side").key == site_key(3)
        # The reader's health went out as events of the lock (via the outbox).
        site.gateway.locks["side"].events_waiting()
        async with asyncio.timeout(5):
            await site.gateway.locks["side"].wait_for(
                lambda: any(
                    e.payload.get("kind") == "online"
                    for e in site.gateway.store.outbox.entries("side")
                )
            )
        kinds = [e.payload["kind"] for e in site.gateway.store.outbox.entries("side")]
        assert "key_rejected" in kinds and "security_alert" in kinds
