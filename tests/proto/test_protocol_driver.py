"""A new link for the Lockgate lock protocol is a carrier and nothing more: a driver that only
supplies a carrier (here one wired straight to the simulated lock's protocol engine) gets the
session, commissioning and every operation from :class:`ProtocolDriver`, refuses service until
commissioned, and passes the conformance kit."""

from __future__ import annotations

from typing import Literal

import pytest

from drivers.base import DriverContext, DriverOptions
from drivers.errors import LockAuthError
from drivers.lockproto.carrier import Carrier
from drivers.lockproto.client import LinkTiming
from drivers.lockproto.driver import ProtocolDriver
from drivers.serial.driver import SerialDriver
from lockgate.testing import check_driver, make_context
from tests.proto.loopback import LoopbackCarrier, make_engine


class LoopbackOptions(DriverOptions):
    type: Literal["loopback"] = "loopback"


class LoopbackDriver(ProtocolDriver):
    type_name = "loopback"
    options_model = LoopbackOptions

    def __init__(
        self, lock_id: str, options: DriverOptions, ctx: DriverContext, *, carrier: Carrier
    ) -> None:
        super().__init__(lock_id, options, ctx, timing=LinkTiming())
        self.link = carrier

    async def _carrier(self) -> Carrier:
        return self.link


def test_the_link_drivers_hold_no_protocol_code_of_their_own() -> None:
    assert set(vars(LoopbackDriver)) - {"__module__", "__doc__", "__annotations__"} == {
        "type_name",
        "options_model",
        "__init__",
        "_carrier",
        "__abstractmethods__",
        "_abc_impl",
    }
    # Serial keeps only its bus, its poller and the lifetime of both.
    protocol_members = {"connect", "commission", "put_credentials", "list_credentials", "_ready"}
    assert not protocol_members & set(vars(SerialDriver))


async def test_a_carrier_alone_makes_a_working_commissioned_driver() -> None:
    engine = make_engine()
    driver = LoopbackDriver(
        "lock-1", LoopbackOptions(), make_context(), carrier=LoopbackCarrier(engine)
    )
    async with driver:
        with pytest.raises(LockAuthError):
            await driver.connect()  # a fresh lock: no link keys yet
        await driver.commission(engine.pairing_secret)
        assert driver.connected
        await check_driver(driver)
