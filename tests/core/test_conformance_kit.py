"""The conformance kit (``lockgate.testing``) passes a driver that keeps the contract and fails
ones that break it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from lockgate_sim.driver import SimDriver, SimOptions

from lockgate.drivers import BatchResult, Credential, LockDriver, StoredCredential
from lockgate.testing import (
    ConformanceError,
    DriverConformance,
    check_credentials,
    check_driver,
    make_context,
)


class TestSimDriver(DriverConformance):
    """The simulator's driver, through the kit's pytest mixin."""

    @pytest.fixture
    async def driver(self) -> AsyncIterator[LockDriver]:
        async with SimDriver("door", SimOptions(slots=10, max_batch=2), make_context()) as d:
            yield d


class ForgetfulDriver(SimDriver):
    """Lists what it holds without the content tag it was given."""

    async def list_credentials(self) -> list[StoredCredential]:
        held = await super().list_credentials()
        return [StoredCredential(c.credential_id, c.kind, bytes(8), c.window) for c in held]


class BuggyDriver(SimDriver):
    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        raise KeyError(batch[0].credential_id)


async def test_kit_passes_the_sim_driver_in_one_call() -> None:
    async with SimDriver("door", SimOptions(), make_context()) as d:
        await check_driver(d)


async def test_kit_fails_a_driver_that_raises_outside_the_error_tree() -> None:
    async with BuggyDriver("door", SimOptions(), make_context()) as d:
        await d.connect()
        with pytest.raises(ConformanceError, match="KeyError, not a DriverError"):
            await check_credentials(d)


async def test_kit_fails_a_driver_that_loses_content_tags() -> None:
    async with ForgetfulDriver("door", SimOptions(), make_context()) as d:
        await d.connect()
        with pytest.raises(ConformanceError, match="listed tag differs"):
            await check_credentials(d)


def test_lockgate_drivers_re_exports_the_whole_contract() -> None:
    """A plugin finds every public type and error of the contract under ``lockgate.drivers``."""
    import inspect

    import drivers.base
    import drivers.errors
    import lockgate.drivers

    for module in (drivers.base, drivers.errors):
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__
            and (inspect.isclass(value))
        }
        missing = public - set(lockgate.drivers.__all__)
        assert not missing, f"{module.__name__}: {sorted(missing)} not in lockgate.drivers"
