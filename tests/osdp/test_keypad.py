"""PIN assembly at one reader, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drivers.osdp.keypad import Entry, EntryResult, PinEntry, key_of


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def move(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def entry(clock: Clock, **kw: int | float) -> PinEntry:
    opts = {"min_length": 4, "max_length": 8, "inter_key_timeout": 5.0} | kw
    return PinEntry(now=clock, **opts)  # type: ignore[arg-type]


def pins(results: list[Entry]) -> list[str]:
    return [e.pin for e in results if e.result is EntryResult.PIN]


def test_keys_as_ascii_raw_and_the_common_special_codes() -> None:
    assert [key_of(b) for b in b"09#*"] == ["0", "9", "#", "*"]
    assert [key_of(b) for b in (0, 9, 0x0D, 11, 0x7F, 10)] == ["0", "9", "#", "#", "*", "*"]
    assert key_of(ord("A")) is None


def test_one_key_per_report_and_a_whole_pin_in_one_report() -> None:
    clock = Clock()
    pe = entry(clock)
    out: list[Entry] = []
    for k in b"1234#":
        out += pe.feed(bytes([k]))
    assert pins(out) == ["1234"]
    assert pins(pe.feed(b"5678#")) == ["5678"]
    assert pins(pe.feed(bytes([5, 6, 7, 8, 0x0D]))) == ["5678"]


def test_star_mid_entry_clears_it() -> None:
    pe = entry(Clock())
    assert pe.feed(b"98") == []
    assert pe.feed(b"*") == []
    assert pe.pending == 0
    assert pins(pe.feed(b"1234#")) == ["1234"]


def test_a_pause_longer_than_the_timeout_drops_the_partial_entry() -> None:
    clock = Clock()
    pe = entry(clock)
    pe.feed(b"12")
    clock.move(5.1)
    assert pins(pe.feed(b"34#")) == []  # "34" alone is too short: refused, not "1234"
    assert pe.dropped == 1
    pe.feed(b"12")
    clock.move(4.9)  # within the timeout: the entry goes on
    assert pins(pe.feed(b"34#")) == ["1234"]


def test_too_many_digits_refuse_the_entry_once_and_ignore_its_tail() -> None:
    pe = entry(Clock(), max_length=6)
    out = pe.feed(b"1234567")
    assert [e.result for e in out] == [EntryResult.TOO_LONG]
    assert pe.feed(b"89#") == []  # the rest of the long entry is not a new PIN
    assert pins(pe.feed(b"123456#")) == ["123456"]


def test_too_short_and_empty_entries() -> None:
    pe = entry(Clock())
    assert [e.result for e in pe.feed(b"12#")] == [EntryResult.TOO_SHORT]
    assert pe.feed(b"#") == []


def test_no_digit_in_repr() -> None:
    pe = entry(Clock())
    pe.feed(b"1234")
    assert "1234" not in repr(pe)
    (e,) = pe.feed(b"#")
    assert "1234" not in repr(e)


@pytest.mark.parametrize("bad", [b"\xff\x41", b"abc"])
def test_other_bytes_are_ignored(bad: bytes) -> None:
    pe = entry(Clock())
    assert pe.feed(bad) == []
    assert pe.pending == 0
