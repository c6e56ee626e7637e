"""Logging under systemd: records reach journald's native socket with ``LOCK`` as a field."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.journal import JournalHandler, encode_fields, field_name, stderr_is_journal
from gateway.logs import OperatorFormatter


def parse_native(datagram: bytes) -> dict[str, str]:
    """Decode systemd's native journal protocol (both the ``=`` and the binary form)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            name, _, value = line.partition(b"=")
            i = nl + 1
        else:
            name = line
            (size,) = struct.unpack_from("<Q", datagram, nl + 1)
            start = nl + 9
            value = datagram[start : start + size]
            assert datagram[start + size : start + size + 1] == b"\n"
            i = start + size + 1
        fields[name.decode()] = value.decode()
    return fields


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "journal.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def _logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger("lockgate.test.journal")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log


def test_lock_is_a_journal_field(journald: tuple[Path, socket.socket]) -> None:
    path, sock = journald
    handler = JournalHandler(socket_path=path)
    try:
        _logger(handler).warning("door %s jammed", "front", extra={"lock": "front-door"})
        fields = parse_native(sock.recv(65536))
    finally:
        handler.close()
    assert fields["LOCK"] == "front-door"
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "lockgate"
    assert fields["LOGGER"] == "lockgate.test.journal"
    assert fields["MESSAGE"] == "lockgate.test.journal: door front jammed"
    assert "LOCK=" not in fields["MESSAGE"]


def test_traceback_travels_as_one_multiline_field(journald: tuple[Path, socket.socket]) -> None:
    path, sock = journald
    handler = JournalHandler(socket_path=path)
    try:
        try:
            raise KeyError("slot")
        except KeyError:
            _logger(handler).exception("driver failed", extra={"lock": "back"})
        fields = parse_native(sock.recv(65536))
    finally:
        handler.close()
    assert fields["PRIORITY"] == "3"
    assert "Traceback" in fields["MESSAGE"] and "KeyError: 'slot'" in fields["MESSAGE"]
    assert fields["LOCK"] == "back"


def test_records_without_a_lock_carry_no_lock_field(journald: tuple[Path, socket.socket]) -> None:
    path, sock = journald
    handler = JournalHandler(socket_path=path)
    try:
        _logger(handler).info("synced")
        fields = parse_native(sock.recv(65536))
    finally:
        handler.close()
    assert "LOCK" not in fields and fields["PRIORITY"] == "6"


def test_no_journal_socket_falls_back_to_the_stream(tmp_path: Path) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = JournalHandler(socket_path=tmp_path / "absent.sock", fallback=Keep())
    try:
        _logger(handler).error("kept", extra={"lock": "x"})
    finally:
        handler.close()
    assert [r.getMessage() for r in records] == ["kept"]


def test_plain_text_elsewhere_keeps_lock_in_the_line() -> None:
    record = logging.LogRecord("lockgate", logging.INFO, __file__, 1, "hi", None, None)
    record.lock = "side"
    assert OperatorFormatter(journal=False).format(record).endswith("lockgate: hi LOCK=side")
    assert OperatorFormatter(journal=True).format(record) == "<6>lockgate: hi LOCK=side"


def test_encoding_and_field_names() -> None:
    assert encode_fields([("A", "b")]) == b"A=b\n"
    assert encode_fields([("A", "b\nc")]) == b"A\n" + struct.pack("<Q", 3) + b"b\nc\n"
    assert field_name("lock") == "LOCK"
    assert field_name("_secret") is None
    assert field_name("a-b") is None


def test_journal_stream_must_be_our_own_stderr(tmp_path: Path) -> None:
    """``JOURNAL_STREAM`` counts only when it names the stderr we actually have."""
    out = tmp_path / "stderr.txt"
    probe = "from gateway.journal import stderr_is_journal; print(stderr_is_journal())"
    with out.open("wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        same = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            stderr=err,
            capture_output=False,
            stdout=subprocess.PIPE,
            check=True,
            cwd=Path(__file__).parents[2],
        )
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
        other = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            stderr=err,
            stdout=subprocess.PIPE,
            check=True,
            cwd=Path(__file__).parents[2],
        )
    assert same.stdout.strip() == b"True"
    assert other.stdout.strip() == b"False"
    assert stderr_is_journal({"JOURNAL_STREAM": "garbage"}) is False
