"""The link keys are opened from the key store once, not on every poll or exchange; a new
commissioning replaces them in memory; they show in no repr and no log line."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from lockgate_sim.serial_bus import SerialSite
from lockgate_sim.serial_testing import MemoryKeyStore

from drivers.errors import LockAuthError
from drivers.lockproto.client import UnverifiedRefusalError
from drivers.lockproto.keys import LinkKeys, keystore_name
from drivers.serial.driver import SerialDriver

MakeDriver = Callable[..., Awaitable[SerialDriver]]


class CountingKeyStore(MemoryKeyStore):
    """Counts reads: in the gateway each one is a query and an AES-GCM open."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, name: str) -> bytes | None:
        self.reads += 1
        return super().get(name)


def _secret_forms(keys: LinkKeys) -> list[str]:
    forms = []
    for secret in (keys.gateway_static, keys.long_term_key):
        forms += [secret.hex(), repr(secret)[2:-1]]
    return forms


async def test_link_keys_are_read_once_and_replaced_by_a_new_commissioning(
    site: SerialSite, make_driver: MakeDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = CountingKeyStore()
    driver = await make_driver("lock-1", keys=store)
    with pytest.raises(LockAuthError, match="not commissioned"):
        await driver.status()
    await driver.commission(site.pairing_secret("lock-1"))
    first = LinkKeys.from_bytes(store.values[keystore_name("lock-1")])
    reads = store.reads
    for _ in range(5):
        await driver.status()  # an encrypted exchange each
    await driver.disconnect()
    await driver.connect()  # a new session on the same keys
    await driver.capabilities()
    assert store.reads == reads

    # The lock is reset and commissioned again: the keys in memory are the new ones (the old
    # ones would not open a session with it any more).
    site.engines["lock-1"].store.reset()
    await driver.disconnect()
    with pytest.raises(UnverifiedRefusalError, match="not_commissioned"):
        await driver.status()
    await driver.commission(site.pairing_secret("lock-1"))
    second = LinkKeys.from_bytes(store.values[keystore_name("lock-1")])
    assert second.long_term_key != first.long_term_key
    await driver.status()
    assert store.reads == reads  # what commissioning wrote is what it keeps: nothing re-read

    shown = repr(driver) + repr(first) + repr(second) + repr(driver.session) + caplog.text
    for secret in _secret_forms(first) + _secret_forms(second):
        assert secret not in shown


async def test_a_new_driver_over_the_same_store_reads_the_keys_once(
    site: SerialSite, make_driver: MakeDriver
) -> None:
    store = CountingKeyStore()
    commissioning = await make_driver("lock-1", keys=store)
    await commissioning.commission(site.pairing_secret("lock-1"))
    await commissioning.close()
    driver = await make_driver("lock-1", keys=store)
    before = store.reads
    for _ in range(3):
        await driver.status()
    assert store.reads == before + 1
