"""One code, one slot: the same secret in several grants on one lock, and safe window rounding."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.models import AccessMethod, SeamNote
from gateway.planner import CloudView, LockScope, Plan, plan
from tests.core.factories import caps, code, grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOCK = LockScope("front", frozenset({"space-a"}), frozenset(), frozenset())
H = timedelta(hours=1)


def tag(*parts: bytes) -> bytes:
    return b"|".join(parts)


def at(view: CloudView, t: datetime, *, windows: bool = False, lead: timedelta = H) -> Plan:
    return plan(view, LOCK, caps(windows=windows), t, lead_time=lead, tag=tag)


def test_same_user_two_overlapping_grants_hold_one_slot_through_both() -> None:
    grants = {
        "stay": grant("stay", start=T0, hours=3),  # 12:00-15:00
        "extension": grant("extension", start=T0 + 2 * H, hours=4),  # 14:00-18:00
    }
    view = CloudView(grants, [code("m1", "stay", "1234"), code("m2", "extension", "1234")], [])
    for t in (T0, T0 + 2 * H, T0 + 4 * H, T0 + 5 * H):
        p = at(view, t, windows=True)
        assert list(p.desired) == ["m1"], t  # the same slot all along, no swap at 15:00
        window = p.desired["m1"].window
        assert window is not None
        assert (window.starts_at, window.ends_at) == (T0, T0 + 6 * H)
        assert p.shared["m2"][0] == "m1" and p.rejected == {} and p.scheduled == {}
    assert at(view, T0 + 6 * H, windows=True).desired == {}


def test_same_user_grants_with_a_gap_are_two_stays_not_one_long_window() -> None:
    grants = {
        "mon": grant("mon", start=T0, hours=2),  # 12:00-14:00
        "later": grant("later", start=T0 + 2 * H + timedelta(minutes=30), hours=2),  # 14:30-
    }
    view = CloudView(grants, [code("m1", "mon", "1234"), code("m2", "later", "1234")], [])
    # 13:45 with an hour of lead time: both are due, but the gap must stay closed.
    p = at(view, T0 + timedelta(minutes=105), windows=True)
    assert list(p.desired) == ["m1"]
    window = p.desired["m1"].window
    assert window is not None and window.ends_at == T0 + 2 * H
    assert p.scheduled == {"m2": T0 + 2 * H}
    p = at(view, T0 + 2 * H, windows=True)
    assert list(p.desired) == ["m2"]
    window = p.desired["m2"].window
    assert window is not None and window.starts_at == T0 + 2 * H + timedelta(minutes=30)


def test_different_users_the_grant_that_starts_first_keeps_the_code() -> None:
    grants = {
        "jane": grant("jane", start=T0 - H, user="jane"),
        "omar": grant("omar", start=T0 - 2 * H, hours=1.5, user="omar"),  # over at 11:30
        "li": grant("li", start=T0, user="li"),
    }
    view = CloudView(
        grants,
        [
            code("m-jane", "jane", "1234"),
            code("m-omar", "omar", "1234"),
            code("m-li", "li", "1234"),
        ],
        [],
    )
    p = at(view, T0)
    assert list(p.desired) == ["m-jane"]
    code_, why = p.rejected["m-li"]
    assert code_ == "duplicate_code_on_device"
    assert "user identity jane" in why and "access grant jane" in why and "1234" not in why
    note_code, note = p.notes["m-jane"]
    assert note_code == "duplicate_code_on_device"
    assert "access grant li of user identity li" in note and "1234" not in note
    assert "m-omar" not in p.rejected  # over before the conflict: no conflict


def test_a_grant_without_a_user_is_its_own_holder() -> None:
    grants = {"a": grant("a", start=T0, user=None), "b": grant("b", start=T0 + H, user=None)}
    view = CloudView(grants, [code("ma", "a", "1234"), code("mb", "b", "1234")], [])
    p = at(view, T0 + H)
    assert list(p.desired) == ["ma"] and p.rejected["mb"][0] == "duplicate_code_on_device"


def test_windows_are_rounded_inward_to_whole_seconds() -> None:
    start = T0 + timedelta(seconds=10, microseconds=300_000)
    g = replace(grant("g", start=start, hours=1), ends_at=start + timedelta(seconds=50))
    view = CloudView({"g": g}, [code("m", "g", "1234")], [])
    window = at(view, start, windows=True).desired["m"].window
    assert window is not None
    # Start 12:00:10.3 -> 12:00:11 (never before starts_at); end 12:01:00.3 -> 12:01:00.
    assert window.starts_at == T0 + timedelta(seconds=11)
    assert window.ends_at == T0 + timedelta(seconds=60)
    whole = CloudView({"g": grant("g", start=T0, hours=1)}, [code("m", "g", "1234")], [])
    window = at(whole, T0, windows=True).desired["m"].window
    assert window is not None and (window.starts_at, window.ends_at) == (T0, T0 + H)


def test_seam_states_not_issued_waits_errors_are_noted() -> None:
    grants = {"g": grant("g", start=T0)}
    methods = [
        AccessMethod("waiting", "g", "code", issued=False),
        replace(
            code("failing", "g", "5678"),
            seam_notes=(SeamNote("error", "failed_to_issue", "Device offline."),),
        ),
        replace(code("early", "g", "9012"), issued=False),
    ]
    p = at(CloudView(grants, methods, []), T0)
    assert p.waiting == {"waiting": ("not_issued", "Seam has not issued this access method yet")}
    assert set(p.desired) == {"failing", "early"}
    assert p.notes["failing"] == ("failed_to_issue", "Seam error failed_to_issue: Device offline.")
    assert p.notes["early"][0] == "not_issued"
