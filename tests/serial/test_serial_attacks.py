"""Attacker's side on the RS-485 bus (issue 10, finding 6): a device on the bus hears every
frame and can put a forged, unauthenticated ERROR on the line before the lock answers.

``ERROR(NO_SESSION)`` injected right after the gateway's UNLOCK used to make the driver open a
new session and send the UNLOCK again: the lock unlocked twice. A forged ``WRONG_GATEWAY`` used
to surface as "commission it again". ERROR frames are hints now: the gateway waits for the
lock's authenticated answer until the attempt's deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lockgate_sim.serial_bus import SerialSite

from drivers.base import BoltState, EventKind
from drivers.errors import DriverError, LockAuthError, OutcomeUnknownError
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.framing import Frame, encode_frame
from drivers.lockproto.status import Status
from drivers.serial.options import SerialOptions
from tests.serial.conftest import MakeDriver

UNLOCK_DATAGRAM = dgm.DATA_HEADER_LEN + 3 + 2 + dgm.TAG_LEN
"""A sealed UNLOCK is 34 bytes on this protocol: its length gives it away to a listener."""


def forged_error(site: SerialSite, lock_id: str, status: Status) -> bytes:
    return encode_frame(Frame(site.addresses[lock_id], True, dgm.encode(dgm.ErrorDg(status))))


def attacker(
    site: SerialSite, lock_id: str, status: Status, when: Callable[[bytes], bool], times: int
) -> dict[str, int]:
    """Listen on the bus; after each matching gateway frame to ``lock_id`` inject a forged
    ERROR before the lock can answer, ``times`` times."""
    address, sent = site.addresses[lock_id], {"n": 0}

    def listen(frame: Frame) -> None:
        if frame.address == address and sent["n"] < times and when(frame.datagram):
            sent["n"] += 1
            site.bus.inject(forged_error(site, lock_id, status))

    site.bus.listeners.append(listen)
    return sent


def is_unlock(datagram: bytes) -> bool:
    return datagram[0] == dgm.DgType.DATA and len(datagram) == UNLOCK_DATAGRAM


def unlocks(site: SerialSite, lock_id: str) -> int:
    return sum(1 for e in site.locks[lock_id].log if e.kind is EventKind.UNLOCKED)


async def test_forged_no_session_after_unlock_on_the_bus_does_not_unlock_twice(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")  # no poller: only our requests on the wire
    await driver.connect()
    sent = attacker(site, "lock-1", Status.NO_SESSION, is_unlock, times=1)
    await driver.unlock(None)
    assert sent["n"] == 1
    assert unlocks(site, "lock-1") == 1  # executed once, not again in a new session
    assert site.locks["lock-1"].bolt is BoltState.UNLOCKED
    session = driver.session
    assert session is not None and session.stats.handshakes == 1
    assert session.stats.refused["error_hint"] == 1


async def test_forged_no_session_with_the_answer_jammed_reports_unknown_not_a_second_unlock(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1", attempts=2)
    await driver.connect()
    attacker(site, "lock-1", Status.NO_SESSION, is_unlock, times=99)
    site.bus.faults.drop_replies = 2  # the lock's answers (the first and the repeat) are lost
    with pytest.raises(OutcomeUnknownError, match="unlock was sent"):
        await driver.unlock(None)
    assert unlocks(site, "lock-1") == 1  # the lock did unlock, once; nobody sent it again
    assert site.bus.stats.dropped == 2


async def test_forged_wrong_gateway_during_the_handshake_changes_nothing(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1")
    sent = attacker(
        site, "lock-1", Status.WRONG_GATEWAY, lambda d: d[0] == dgm.DgType.HELLO, times=9
    )
    await driver.connect()  # the lock's real HELLO_REPLY still opens the session
    assert sent["n"] == 1
    assert (await driver.status()).bolt is BoltState.LOCKED


async def test_a_wrong_gateway_that_persists_is_not_a_call_to_commission_again(
    site: SerialSite, commissioned: dict[str, SerialOptions], make_driver: MakeDriver
) -> None:
    driver = await make_driver("lock-1", attempts=2)
    attacker(site, "lock-1", Status.WRONG_GATEWAY, lambda d: d[0] == dgm.DgType.HELLO, times=9)
    site.bus.faults.drop_replies = 2  # and the lock's own answers are jammed
    with pytest.raises(DriverError, match="wrong_gateway") as caught:
        await driver.connect()
    err = caught.value
    assert not isinstance(err, LockAuthError)  # not "not retryable: commission it again"
    assert getattr(err, "retryable", False)
    assert "unauthenticated" in str(err) and "commission it again" not in str(err)
