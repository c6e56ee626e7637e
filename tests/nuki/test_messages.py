"""Nuki payloads: windows as the lock judges them, entries both ways, and garbage in."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from drivers.nuki import crypto, wire
from drivers.nuki.messages import CodeWindow, KeypadEntry, LogEntry

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def test_an_empty_window_is_always() -> None:
    assert not CodeWindow().time_limited
    assert CodeWindow().admits(MONDAY_9)


def test_dates_weekdays_and_time_of_day() -> None:
    window = CodeWindow(
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 31, tzinfo=UTC),
        weekdays=0b1000000 | 0b0000100,  # Monday and Friday
        from_time=time(8, 0),
        until_time=time(18, 0),
    )
    assert window.admits(MONDAY_9)
    assert not window.admits(MONDAY_9.replace(hour=7, minute=59))
    assert not window.admits(MONDAY_9.replace(hour=18))
    assert not window.admits(MONDAY_9.replace(day=3))  # Tuesday
    assert window.admits(MONDAY_9.replace(day=6))  # Friday
    assert not window.admits(datetime(2026, 4, 6, 9, tzinfo=UTC))  # a Monday after the end
    raw = window.encode()
    assert raw[0] == 1 and len(raw) == 20
    assert CodeWindow.decode(raw[1:]) == window


@given(
    code_id=st.integers(0, 0xFFFF),
    code=st.integers(111111, 999999),
    name=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", max_size=20),
    limited=st.booleans(),
)
def test_keypad_entries_round_trip(code_id: int, code: int, name: str, limited: bool) -> None:
    window = CodeWindow(starts_at=MONDAY_9) if limited else CodeWindow()
    entry = KeypadEntry(code_id, code, name, True, MONDAY_9, None, 3, window)
    raw = entry.encode()
    assert len(raw) == (63 if limited else 44)
    assert KeypadEntry.decode(raw) == entry


@given(st.binary(max_size=200))
def test_garbage_never_breaks_the_parsers(data: bytes) -> None:
    for parse in (wire.decode_plain, KeypadEntry.decode, LogEntry.decode):
        with contextlib.suppress(wire.WireError):
            parse(data)
    with contextlib.suppress(wire.WireError, crypto.OpenError):
        wire.decode_sealed(bytes(32), data)
    for sealed in (True, False):
        with contextlib.suppress(wire.WireError):
            wire.Reassembler(sealed=sealed).feed(data)
