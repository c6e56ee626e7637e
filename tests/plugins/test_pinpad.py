"""A third-party driver, installed from its own folder (tests/plugins/lockgate-pinpad) by the
bootstrap: found through the ``lockgate.drivers`` entry point, passing the conformance kit, and
receiving a grant's PIN through the daemon."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path

import pytest

from drivers.base import CredentialKind, LockDriver
from drivers.registry import default_registry
from fakecloud.server import FakeCloudServer
from gateway.clock import FakeClock
from gateway.daemon import Gateway
from lockgate.testing import DriverConformance, check_driver, make_context
from tests.e2e.site import WAIT, site_config, write_secret

PIN = "482913"


def pinpad_class() -> type[LockDriver]:
    return default_registry().get("pinpad")  # through the entry point, not an import


def test_installed_as_its_own_distribution_with_an_entry_point() -> None:
    dist = metadata.distribution("lockgate-pinpad")
    (ep,) = [ep for ep in dist.entry_points if ep.group == "lockgate.drivers"]
    assert (ep.name, ep.value) == ("pinpad", "lockgate_pinpad:PinpadDriver")
    cls = pinpad_class()
    module = sys.modules[cls.__module__]
    assert len(Path(module.__file__ or "").read_text().splitlines()) < 60
    # The four essential members only: no stubs of the optional ones.
    overridden = {
        name
        for name, value in vars(cls).items()
        if inspect.iscoroutinefunction(value) or isinstance(value, property)
    }
    assert overridden == {
        "capabilities",
        "list_credentials",
        "put_credentials",
        "delete_credentials",
    }


class TestPinpadConformance(DriverConformance):
    @pytest.fixture
    async def driver(self, tmp_path: Path) -> AsyncIterator[LockDriver]:
        cls = pinpad_class()
        options = cls.options_model.model_validate(
            {"type": "pinpad", "codes_file": str(tmp_path / "codes.json")}
        )
        async with cls("keypad", options, make_context()) as d:
            yield d


async def test_conformance_in_one_call(tmp_path: Path) -> None:
    cls = pinpad_class()
    options = cls.options_model.model_validate(
        {"type": "pinpad", "codes_file": str(tmp_path / "codes.json")}
    )
    async with cls("keypad", options, make_context()) as d:
        await check_driver(d)


async def test_a_grant_pin_reaches_the_keypad_through_the_daemon(
    tmp_path: Path, clock: FakeClock
) -> None:
    codes_file = tmp_path / "keypad-codes.json"
    registry = default_registry()
    async with FakeCloudServer(now=clock.now) as cloud:
        space = cloud.state.add_space(name="Shed")["space_id"]
        user = cloud.state.add_user_identity(full_name="Jane Doe")["user_identity_id"]
        cfg = site_config(
            tmp_path,
            cloud.url,
            write_secret(tmp_path / "api-key", cloud.api_key),
            [
                {
                    "id": "shed",
                    "space_ids": [space],
                    "driver": {"type": "pinpad", "codes_file": str(codes_file)},
                }
            ],
            registry,
        )
        gateway = Gateway(cfg, registry, clock=clock, kernel_synchronised=lambda: True)
        async with gateway as gw, gw.serving():
            grant = cloud.state.grants.create(
                user_identity_id=user,
                space_ids=[space],
                requested_access_methods=[{"mode": "code", "code": PIN}],
            )
            (method_id,) = grant["access_method_ids"]
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()

            def on_keypad() -> dict[str, str]:
                if not codes_file.exists():
                    return {}
                return {k: v["pin"] for k, v in json.loads(codes_file.read_text()).items()}

            shed = gw.locks["shed"]
            async with asyncio.timeout(WAIT):
                await shed.wait_for(lambda: on_keypad() == {method_id: PIN})
                await shed.wait_for(
                    lambda: gw.store.sync_states.counts("shed")["applied"] == 1
                )  # read back by content tag
            assert shed.health.last_error_code is None
            assert gw.decide(CredentialKind.CODE, PIN.encode(), "shed", dry_run=True).allow

            cloud.state.grants.delete(grant["access_grant_id"])
            async with asyncio.timeout(WAIT):
                await gw.sync_loop.sync_now()
                await shed.wait_for(lambda: on_keypad() == {})
