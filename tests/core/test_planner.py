"""The planner: what a lock should hold at time t, and why some credentials cannot go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.models import Entrance
from gateway.planner import CloudView, LockScope, plan
from tests.core.factories import caps, card, code, grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOCK = LockScope("front", frozenset({"space-a"}), frozenset(), frozenset())


def tag(*parts: bytes) -> bytes:
    return b"|".join(parts)[:8].ljust(8, b".")


def run(view: CloudView, t: datetime, **kw: object) -> object:
    return plan(view, LOCK, kw.pop("c", caps()), t, lead_time=timedelta(hours=1), tag=tag)  # type: ignore[arg-type]


def test_codes_follow_the_window_on_a_lock_without_windows() -> None:
    g = grant("g1", start=T0 + timedelta(minutes=30), hours=2)
    view = CloudView({"g1": g}, [code("m1", "g1", "123456")], [])
    before = plan(view, LOCK, caps(), T0, lead_time=timedelta(hours=1), tag=tag)
    assert before.desired == {}
    assert before.scheduled == {"m1": g.starts_at}
    assert before.next_change == g.starts_at

    during = plan(view, LOCK, caps(), g.starts_at, lead_time=timedelta(hours=1), tag=tag)  # type: ignore[arg-type]
    assert list(during.desired) == ["m1"]
    assert during.desired["m1"].window is None
    assert during.next_change == g.ends_at

    assert g.ends_at is not None
    after = plan(view, LOCK, caps(), g.ends_at, lead_time=timedelta(hours=1), tag=tag)
    assert after.desired == {} and after.scheduled == {}


def test_locks_with_windows_get_codes_ahead_with_the_window_attached() -> None:
    g = grant("g1", start=T0 + timedelta(minutes=30), hours=2)
    view = CloudView({"g1": g}, [code("m1", "g1", "123456")], [])
    p = plan(view, LOCK, caps(windows=True), T0, lead_time=timedelta(hours=1), tag=tag)
    assert list(p.desired) == ["m1"]
    window = p.desired["m1"].window
    assert window is not None and window.starts_at == g.starts_at and window.ends_at == g.ends_at


def test_grant_reaches_a_lock_through_its_entrance_space() -> None:
    g = grant("g1", start=T0, spaces=("space-b",))
    view = CloudView(
        {"g1": g}, [code("m1", "g1", "1234")], [Entrance("door-7", frozenset({"space-b"}))]
    )
    by_entrance = LockScope("side", frozenset(), frozenset({"door-7"}), frozenset())
    assert list(plan(view, by_entrance, caps(), T0, lead_time=timedelta(0), tag=tag).desired) == [
        "m1"
    ]
    assert plan(view, LOCK, caps(), T0, lead_time=timedelta(0), tag=tag).desired == {}


def test_refusals_are_reported_per_credential_never_dropped() -> None:
    grants = {
        "ok": grant("ok", start=T0 - timedelta(minutes=1)),
        "bad": grant("bad", start=T0, problem="ends_at is not after starts_at"),
        "dup": grant("dup", start=T0, user="user-2"),
    }
    methods = [
        code("m-ok", "ok", "123456"),
        code("m-letters", "ok", "12AB56"),
        code("m-short", "ok", "12"),
        code("m-bad", "bad", "654321"),
        code("m-dup", "dup", "123456"),
        card("m-card", "ok", "99887766"),
    ]
    p = plan(CloudView(grants, methods, []), LOCK, caps(), T0, lead_time=timedelta(0), tag=tag)
    assert set(p.desired) == {"m-ok", "m-card"}
    assert {k: v[0] for k, v in p.rejected.items()} == {
        "m-letters": "code_rule",
        "m-short": "code_rule",
        "m-bad": "invalid_grant",
        "m-dup": "duplicate_code_on_device",
    }


def test_capacity_keeps_the_earliest_and_reports_the_rest() -> None:
    grants = {f"g{i}": grant(f"g{i}", start=T0 - timedelta(minutes=10 - i)) for i in range(5)}
    methods = [code(f"m{i}", f"g{i}", f"10{i:02d}") for i in range(5)]
    p = plan(
        CloudView(grants, methods, []), LOCK, caps(slots=3), T0, lead_time=timedelta(0), tag=tag
    )
    assert set(p.desired) == {"m0", "m1", "m2"}
    assert {k: v[0] for k, v in p.rejected.items()} == {"m3": "capacity", "m4": "capacity"}


def test_revoked_methods_and_cloud_keys_never_reach_a_lock() -> None:
    from dataclasses import replace

    from gateway.models import AccessMethod

    g = grant("g1", start=T0)
    methods = [
        replace(code("m1", "g1", "1234"), revoked_at=T0),
        AccessMethod("m2", "g1", "cloud_key"),
    ]
    p = plan(CloudView({"g1": g}, methods, []), LOCK, caps(), T0, lead_time=timedelta(0), tag=tag)
    assert p.desired == {} and p.rejected == {}
