"""The sd_notify wire: datagrams to a path or an abstract socket, and the watchdog variables."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest

from gateway.notify import SdNotifier, watchdog_timeout
from tests.deploy.conftest import NotifySocket


def test_fields_arrive_in_one_datagram(notify_socket: NotifySocket) -> None:
    notifier = SdNotifier(notify_socket.address)
    assert notifier.enabled
    assert notifier.notify("READY=1", "STATUS=1 lock\nok")
    assert notify_socket.queued() == [{"READY": "1", "STATUS": "1 lock ok"}]


def test_abstract_socket() -> None:
    listener = NotifySocket(f"@lockgate-test-{uuid.uuid4().hex}")
    try:
        assert SdNotifier.from_environment({"NOTIFY_SOCKET": listener.address}).notify("WATCHDOG=1")
        assert listener.queued() == [{"WATCHDOG": "1"}]
    finally:
        listener.close()


@pytest.mark.parametrize("address", [None, "", "vsock:2:1234", "relative/path", "@"])
def test_no_usable_socket_means_no_notifications(address: str | None) -> None:
    env = {} if address is None else {"NOTIFY_SOCKET": address}
    notifier = SdNotifier.from_environment(env)
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False


def test_a_manager_that_went_away_is_logged_once_and_never_raises(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SdNotifier(str(short_dir / "nobody-listens"))
    with caplog.at_level(logging.DEBUG, logger="gateway.notify"):
        assert notifier.notify("WATCHDOG=1") is False
        assert notifier.notify("WATCHDOG=1") is False
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG]


def test_watchdog_timeout_from_environment() -> None:
    me = os.getpid()
    assert watchdog_timeout({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_timeout({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(me)}) == 0.2
    assert watchdog_timeout({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(me + 1)}) is None
    assert watchdog_timeout({}) is None
    assert watchdog_timeout({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_timeout({"WATCHDOG_USEC": "soon"}) is None
