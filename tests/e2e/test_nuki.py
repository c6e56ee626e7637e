"""Nuki locks through the daemon over the simulated radio: a grant's keypad code with its
window on two locks, the lock enforcing the window itself, the events naming user and grant,
rule-breaking codes refused per credential before any radio traffic, a link drop in the middle
of a batch and a daemon restart leaving exactly the desired set, no code added twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from lockgate_sim.ble.simulator import BleSimulator
from lockgate_sim.nuki.gatt import NukiBleLock

from drivers.nuki.wire import Command
from drivers.registry import default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.daemon import Gateway
from tests.e2e.site import WAIT, Site, running_site, site_config, write_secret


def codes_on(lock: NukiBleLock) -> set[int]:
    return {e.code for e in lock.model.codes.values()}


def has_codes(lock: NukiBleLock, want: set[int]) -> Callable[[], bool]:
    """A predicate: the lock's keypad holds exactly the codes ``want``."""
    return lambda: codes_on(lock) == want


def adds(lock: NukiBleLock) -> int:
    return lock.engine.stats.commands.get(Command.ADD_KEYPAD_CODE, 0)


def nukis(site: Site) -> dict[str, NukiBleLock]:
    radio: BleSimulator = site.radio
    return radio.nukis


async def test_a_grants_code_reaches_two_nuki_locks_with_its_window(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock, link="nuki") as site:
        locks = nukis(site)
        assert site.gateway.locks["front"].handle.type_name == "nuki"
        start = (clock.now() + timedelta(minutes=5)).replace(microsecond=0)
        end = start + timedelta(hours=2)
        grant = site.grant(
            space=site.space_a,
            modes=[{"mode": "code", "code": "482913"}],
            starts_at=start,
            ends_at=end,
        )
        [method] = grant["access_method_ids"]
        await site.sync()
        # within 2 s of the sync (site.until's bound), with its window, on both locks
        for lock_id in ("front", "back"):
            await site.until(lock_id, has_codes(locks[lock_id], {482913}))
            [entry] = locks[lock_id].model.codes.values()
            assert (entry.window.starts_at, entry.window.ends_at) == (start, end)
        assert codes_on(locks["office"]) == set()

        # the lock decides from its own memory and clock
        assert not locks["front"].type_code("482913")  # before the window
        clock.set(start + timedelta(minutes=1))
        assert locks["front"].type_code("482913")
        clock.set(end + timedelta(seconds=1))
        assert not locks["back"].type_code("482913")  # after it, before the gateway acts

        site.gateway.locks["front"].events_waiting()
        site.gateway.locks["back"].events_waiting()
        await site.until("front", lambda: len(lock_events(site, "front")) >= 2)
        await site.until("back", lambda: len(lock_events(site, "back")) >= 1)
        before, opened = lock_events(site, "front")
        assert (before["kind"], before["reason"]) == ("access_denied", "not_allowed_now")
        assert opened["kind"] == "access_allowed"
        assert opened["access_method_id"] == method
        assert opened["access_grant_id"] == grant["access_grant_id"]
        assert opened["user_identity_id"] == site.user
        [after] = lock_events(site, "back")
        assert (after["kind"], after["access_grant_id"]) == (
            "access_denied",
            grant["access_grant_id"],
        )
        assert "482913" not in repr(site.outbox())

        # ended: the gateway takes it off too
        for lock_id in ("front", "back"):
            await site.until(lock_id, has_codes(locks[lock_id], set()))


async def test_a_deleted_grants_code_leaves_both_locks(tmp_path: Path, clock: FakeClock) -> None:
    async with running_site(tmp_path, clock, link="nuki") as site:
        locks = nukis(site)
        grant = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "482913"}])
        await site.sync()
        for lock_id in ("front", "back"):
            await site.until(lock_id, has_codes(locks[lock_id], {482913}))
        assert locks["back"].type_code("482913")
        site.cloud.state.grants.delete(grant["access_grant_id"])
        await site.sync()
        for lock_id in ("front", "back"):
            await site.until(lock_id, has_codes(locks[lock_id], set()))
        assert not locks["front"].type_code("482913")


async def test_rule_breaking_codes_are_refused_per_credential_before_any_radio_traffic(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_site(tmp_path, clock, link="nuki") as site:
        locks = nukis(site)
        good = site.grant(space=site.space_a, modes=[{"mode": "code", "code": "482913"}])
        refused = {
            "zero": site.grant(space=site.space_a, modes=[{"mode": "code", "code": "482903"}]),
            "twelve": site.grant(space=site.space_a, modes=[{"mode": "code", "code": "123456"}]),
            "duplicate": site.grant(space=site.space_a, modes=[{"mode": "code", "code": "482913"}]),
        }
        await site.sync()
        good_id = good["access_method_ids"][0]
        ids = {k: g["access_method_ids"][0] for k, g in refused.items()}
        for lock_id in ("front", "back"):
            await site.until(lock_id, has_codes(locks[lock_id], {482913}))
            # the pass is over once no row is pending (its last sync-state write is awaited)
            def settled(lid: str = lock_id) -> bool:
                got = states(site, lid)
                return set(got) >= {good_id, *ids.values()} and all(
                    s != "pending" for s, _ in got.values()
                )

            await site.until(lock_id, settled)
            got = states(site, lock_id)
            assert got[ids["zero"]] == ("failed", "code_rule")
            assert got[ids["twelve"]] == ("failed", "code_rule")
            # the same person's two grants with one code: one slot (docs/cloud.md), which the
            # grant that starts first holds; the other shares it
            assert sorted([got[good_id], got[ids["duplicate"]]]) == [
                ("applied", None),
                ("shared", None),
            ]
            # one Add Keypad Code went over the air: the good code's
            assert adds(locks[lock_id]) == 1


def lock_events(site: Site, lock_id: str) -> list[dict[str, Any]]:
    return [e for e in site.outbox() if e.get("lock_id") == lock_id and e.get("source") == "lock"]


def states(site: Site, lock_id: str) -> dict[str, tuple[str, str | None]]:
    return {
        k: (v.state.value, v.error_code)
        for k, v in site.gateway.store.sync_states.for_lock(lock_id).items()
    }


@contextlib.asynccontextmanager
async def gateway_for(
    tmp: Path, clock: FakeClock, cloud: FakeCloudServer, radio: BleSimulator, space: str
) -> AsyncIterator[Gateway]:
    hci = radio.endpoints[0]
    locks = [
        {
            "id": name,
            "space_ids": [space],
            "driver": {
                "type": "nuki",
                "address": lock.address,
                "backend": "lockgate_sim.ble.remote:hci_backends",
                "adapter": hci.client_spec,
                "scan_timeout": 2.0,
                "connect_timeout": 2.0,
                "reply_timeout": 2.0,
                "reconnect_min": 0.05,
                "reconnect_max": 0.5,
            },
        }
        for name, lock in radio.nukis.items()
    ]
    cfg = site_config(tmp, cloud.url, tmp / "api-key", locks)
    async with Gateway(
        cfg, default_registry(), clock=clock, kernel_synchronised=lambda: True
    ) as gw, gw.serving():
        yield gw


async def test_link_drop_mid_batch_and_a_restart_leave_the_exact_set(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        FakeCloudServer(now=clock.now) as cloud,
        BleSimulator(state_dir=tmp_path, now=clock.now) as radio,
    ):
        space = cloud.state.add_space(name="Flat 3")["space_id"]
        user = cloud.state.add_user_identity(full_name="Guest")["user_identity_id"]
        write_secret(tmp_path / "api-key", cloud.api_key)
        front, back = await radio.add_nuki("front"), await radio.add_nuki("back")
        await radio.expose("gateway")
        first = [f"4829{i:02d}" for i in range(11, 19)]
        second = [f"5829{i:02d}" for i in range(11, 19)]

        def grant(code: str) -> None:
            cloud.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": code}],
            )

        async with gateway_for(tmp_path, clock, cloud, radio, space) as gw:
            for name, lock in (("front", front), ("back", back)):
                await gw.commission(name, str(lock.model.security_pin))
            for code in first:
                grant(code)
            # the reconciler reads the codes (challenge + request), then challenge + Add per
            # code: front acts on its third Add but the link drops before it answers; back's
            # second Add never reaches the lock
            front.faults.drop_after_command = 2 + 2 * 2 + 1
            back.faults.drop_before_command = 2 + 2 * 1 + 1
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()
            want = {int(c) for c in first}
            for name, lock in (("front", front), ("back", back)):
                await until(gw, name, has_codes(lock, want), wait=4 * WAIT)
            assert front.stats.links_dropped == back.stats.links_dropped == 1
            assert adds(front) == adds(back) == len(first)  # none twice

            for code in second:
                grant(code)
            # the daemon stops in the middle of the second batch: front holds its third Add
            front.faults.stall_before_command = 2 + 2 * 2 + 1
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()
                await front.wait_for(lambda: front.stalled)
        front.resume()
        assert len(codes_on(front)) == len(first) + 2

        async with gateway_for(tmp_path, clock, cloud, radio, space) as gw:
            want = {int(c) for c in first + second}
            for name, lock in (("front", front), ("back", back)):
                await until(gw, name, has_codes(lock, want), wait=4 * WAIT)
            assert adds(front) == adds(back) == len(want)  # none twice, across the restart
            assert len(front.model.auths) == 1  # not paired again


async def until(
    gw: Gateway, lock_id: str, predicate: Callable[[], bool], wait: float = WAIT
) -> None:
    async with asyncio.timeout(wait):
        await gw.locks[lock_id].wait_for(predicate)
