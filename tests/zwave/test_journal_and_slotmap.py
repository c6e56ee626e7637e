"""The Z-Wave driver's state in the key store, without a rig: the journal survives a restart
and numbers on, the slot map keeps no code, windows become year-day schedules."""

from __future__ import annotations

from datetime import UTC, datetime

from drivers.base import EventKind, LockEvent, TimeWindow
from drivers.zwave.events import interpret
from drivers.zwave.journal import Journal
from drivers.zwave.schedule import year_day
from drivers.zwave.slotmap import SlotEntry, SlotMap, SlotState

from .conftest import MemoryKeyStore

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(kind: EventKind = EventKind.LOCKED) -> LockEvent:
    return LockEvent(seq=0, occurred_at=T, kind=kind, reason="manual")


def test_the_journal_survives_a_restart_and_numbers_on() -> None:
    keys = MemoryKeyStore()
    journal = Journal(keys)
    assert not journal.mark_connected()  # the first connection ever: no gap
    first = journal.append(event())
    second = journal.append(event(EventKind.UNLOCKED))
    assert (first.seq, second.seq) == (1, 2)

    again = Journal(keys)  # the gateway restarted before fetching
    assert again.mark_connected()  # connected before: a gap must be recorded
    page = again.page(0, 100)
    assert [e.seq for e in page.events] == [1, 2] and page.next_seq == 2
    again.ack(1)
    assert [e.seq for e in Journal(keys).page(0, 100).events] == [2]
    assert Journal(keys).append(event()).seq == 3


def test_a_full_journal_drops_the_oldest_and_says_so() -> None:
    journal = Journal(MemoryKeyStore(), capacity=3)
    for _ in range(5):
        journal.append(event())
    kinds = [e.kind for e in journal.events]
    assert kinds[0] is EventKind.EVENTS_LOST
    assert [e.seq for e in journal.events] == sorted({e.seq for e in journal.events})
    assert journal.events[-1].seq == 5


def test_the_slot_map_keeps_no_code() -> None:
    keys = MemoryKeyStore()
    slots = SlotMap(keys)
    entry = SlotEntry(4, "method-1", b"tag45678", slots.code_hash("482913"), SlotState.HELD)
    slots.put(entry)
    reloaded = SlotMap(keys)
    assert reloaded.entries[4] == entry
    assert reloaded.matches(reloaded.entries[4], "482913")
    assert not reloaded.matches(reloaded.entries[4], "482914")
    assert b"482913" not in b"".join(keys.data.values())
    # The hash is keyed per lock: another lock's map gives another hash for the same code.
    assert SlotMap(MemoryKeyStore()).code_hash("482913") != slots.code_hash("482913")


def test_windows_become_year_day_schedules() -> None:
    w = TimeWindow(
        datetime(2026, 3, 1, 9, 30, 45, tzinfo=UTC), datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    )
    assert year_day(w) == {
        "startYear": 26, "startMonth": 3, "startDay": 1, "startHour": 9, "startMinute": 30,
        "stopYear": 26, "stopMonth": 3, "stopDay": 5, "stopHour": 18, "stopMinute": 0,
    }  # fmt: skip
    open_start = year_day(TimeWindow(None, datetime(2026, 3, 5, tzinfo=UTC)))
    assert (open_start["startYear"], open_start["startMonth"], open_start["startDay"]) == (0, 1, 1)
    open_end = year_day(TimeWindow(T, None))
    assert open_end["stopYear"] == 99  # zwave-js reads years 0-99 as 1900-1999: stay below 100


def test_notifications_become_events() -> None:
    def slot_owner(slot: int) -> str | None:
        return {3: "method-3"}.get(slot)

    keypad = interpret(6, 6, {"userId": 3}, T, slot_owner)
    assert keypad.event is not None and keypad.event.kind is EventKind.ACCESS_ALLOWED
    assert keypad.event.credential_id == "method-3"
    foreign = interpret(6, 6, {"userId": 9}, T, slot_owner)
    assert foreign.event is not None and foreign.event.credential_id is None
    assert "slot 9" in (foreign.event.reason or "")
    assert interpret(6, 15, {"userId": 4}, T, slot_owner).duplicate_slot == 4
    jammed = interpret(6, 11, {}, T, slot_owner)
    assert jammed.jammed and jammed.event is not None and jammed.event.reason == "jammed"
    assert interpret(6, 2, {}, T, slot_owner).event.kind is EventKind.UNLOCKED  # type: ignore[union-attr]
    assert interpret(99, 1, {}, T, slot_owner).event is None
