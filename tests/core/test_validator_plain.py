"""The validator's plain path (one lookup in the view's plain index, then compares) decides
exactly as its full path: random grants, windows, spaces, entrances, devices, kinds, shared
secrets, revocations, problems, mobile-key proofs and clock states, every secret at every
lock, at every window boundary and a microsecond either side."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import CredentialKind
from gateway.clock import FakeClock
from gateway.config import TimeConfig, ValidatorConfig
from gateway.lockout import LockoutPolicy
from gateway.models import AccessMethod, Entrance, Grant
from gateway.planner import CloudView, LockScope, Plain
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.timetrust import HonestClock, TimeTrust
from gateway.validator import Validator

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
SECRETS = [b"1111", b"2222", b"3333", b"4444"]
UNKNOWN = b"9999"
SPACES = ("space-a", "space-b", "space-c")
ENTRANCES = [Entrance("e1", frozenset({"space-c"}))]
SCOPES = {
    "a": LockScope("a", frozenset({"space-a"}), frozenset(), frozenset()),
    "b": LockScope("b", frozenset({"space-b"}), frozenset({"e1"}), frozenset()),
    "d": LockScope("d", frozenset(), frozenset(), frozenset({"d1"})),
}
LOCKS = [*SCOPES, "nowhere"]
BOUNDS = [None, T0 - HOUR, T0 - US, T0, T0 + US, T0 + HOUR]
TIMES = [T0 - HOUR - US, T0 - HOUR, T0 - US, T0, T0 + US, T0 + HOUR, T0 + HOUR + US]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """An empty store (no lockouts, nothing revoked): both paths ask it the same."""
    d: Path = tmp_path_factory.mktemp("plain")
    with Store.open(d / "lockgate.db", SecretRef(file=d / "store.key")) as s:
        yield s


@st.composite
def grants(draw: st.DrawFn, gid: str) -> Grant:
    starts, ends = draw(st.sampled_from(BOUNDS)), draw(st.sampled_from(BOUNDS))
    return Grant(
        gid,
        starts,
        ends,
        frozenset(draw(st.sets(st.sampled_from(SPACES), max_size=2))),
        frozenset(draw(st.sets(st.just("e1")))),
        frozenset(draw(st.sets(st.just("d1")))),
        user_identity_id=draw(st.sampled_from(["user-1", "user-2", None])),
        problem=draw(st.sampled_from([None, None, None, "bad grant"])),
        revoked_at=draw(st.sampled_from([None, None, None, T0 - HOUR])),
    )


@st.composite
def sites(draw: st.DrawFn) -> tuple[dict[str, Grant], list[AccessMethod]]:
    n = draw(st.integers(0, 5))
    gs = {f"g{i}": draw(grants(f"g{i}")) for i in range(n)}
    methods = [
        AccessMethod(
            f"m{i}",
            draw(st.sampled_from([*gs, "gone", None])),
            draw(st.sampled_from(["code", "code", "card", "mobile_key", "cloud_key"])),
            secret=draw(st.sampled_from([*SECRETS, None])),
            problem=draw(st.sampled_from([None, None, "bad method"])),
            revoked_at=draw(st.sampled_from([None, None, None, T0 - HOUR])),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    return gs, methods


def validator(
    store: Store, view: CloudView, synced: bool, policy: str
) -> tuple[Validator, TimeTrust, FakeClock]:
    clock = FakeClock(T0)
    time_cfg = TimeConfig(policy=policy, tolerance_s=1)
    trust = TimeTrust(clock, store.meta, time_cfg, kernel=lambda: synced)
    lockouts = LockoutPolicy(store.lockouts, ValidatorConfig())
    v = Validator(
        store,
        lambda: view,
        SCOPES,
        HonestClock(trust, clock),
        trust,
        time_cfg,
        lockouts,
        lambda m, proof, lock_id: proof == b"ok",
    )
    return v, trust, clock


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    site=sites(),
    synced=st.booleans(),
    policy=st.sampled_from(["deny_time_bounded", "allow_within_tolerance"]),
    at=st.sampled_from(TIMES),
    step=st.sampled_from([0.0, 0.0, 3600.0]),
    proof=st.sampled_from([None, b"ok", b"bad"]),
)
def test_the_plain_path_decides_as_the_full_path(
    store: Store,
    site: tuple[dict[str, Grant], list[AccessMethod]],
    synced: bool,
    policy: str,
    at: datetime,
    step: float,
    proof: bytes | None,
) -> None:
    gs, methods = site
    view = CloudView(gs, methods, ENTRANCES, 1)
    assert_indexed(view, gs, methods)
    v, trust, clock = validator(store, view, synced, policy)
    clock.set(at)
    clock.step(step)  # a step of the wall clock: not trusted until a witness vouches
    reading = trust.reading()  # the daemon's clock: the time with the trust's verdict
    for kind in CredentialKind:
        for secret in [*SECRETS, UNKNOWN]:
            for lock in LOCKS:
                scope = SCOPES.get(lock)
                # on a time given (the trust asked only for a bounded grant), and on the
                # daemon's reading
                for t, distrust in ((at, None), reading):
                    got = v._decide(kind, secret, lock, proof, t, distrust, "event")
                    if scope is None:
                        assert got.reason == "not_for_this_entrance"
                        continue
                    want = v._full(kind, secret, lock, proof, t, distrust, view, scope)
                    if got.event_id is not None:  # the plain allow carries its event
                        assert (got.allow, got.reason) == (True, "valid")
                        got = msgspec.structs.replace(got, event_id=None)
                    assert got == want, (kind, secret, lock, t, distrust)


def assert_indexed(view: CloudView, gs: dict[str, Grant], methods: list[AccessMethod]) -> None:
    """Each secret's live methods, and its plain entry exactly when it should have one."""
    for mode in ("code", "card", "mobile_key", "cloud_key"):
        for secret in SECRETS:
            live = [
                m
                for m in methods
                if (m.mode, m.secret) == (mode, secret)
                and m.revoked_at is None
                and m.grant_id in gs
                and gs[m.grant_id].revoked_at is None
            ]
            assert view.methods_with(mode, secret) == live
            entry = view.plain[mode].get(secret) if mode in view.plain else None
            g = gs[live[0].grant_id or ""] if len(live) == 1 else None
            if g is not None and mode in ("code", "card") and g.problem is None:
                m = live[0]
                fields = (g.grant_id, g.user_identity_id, g.space_ids, g.starts_at, g.ends_at)
                assert entry == Plain(m.method_id, *fields, m)
                assert entry.space_ids is view.space_sets[g.space_ids]  # one object each set
                assert (mode, secret) not in view.by_secret
            else:
                assert entry is None


def test_the_plain_index_holds_only_what_the_plain_path_decides() -> None:
    g = Grant("g1", T0, T0 + HOUR, frozenset({"space-a"}), user_identity_id="u")
    bad = Grant("g2", None, None, frozenset({"space-a"}), problem="ends before it starts")
    methods = [
        AccessMethod("m1", "g1", "code", secret=b"1111"),
        AccessMethod("m2", "g1", "card", secret=b"1111"),
        AccessMethod("m3", "g1", "mobile_key", secret=b"5555"),
        AccessMethod("m4", "g1", "code", secret=b"2222"),
        AccessMethod("m5", "g1", "code", secret=b"2222"),  # two live methods: the full path
        AccessMethod("m6", "g2", "code", secret=b"3333"),  # a grant with a problem
    ]
    view = CloudView({"g1": g, "g2": bad}, methods, [], 1)
    one = Plain("m1", "g1", "u", frozenset({"space-a"}), T0, T0 + HOUR, methods[0])
    assert view.plain[CredentialKind.CODE] == {b"1111": one}
    assert view.plain[CredentialKind.CARD] == {
        b"1111": one._replace(method_id="m2", method=methods[1])
    }
    assert view.plain[CredentialKind.MOBILE_KEY] == {}
    assert set(view.by_secret) == {("mobile_key", b"5555"), ("code", b"2222"), ("code", b"3333")}
    for mode, secret, held in [
        ("code", b"1111", ["m1"]),
        ("card", b"1111", ["m2"]),
        ("mobile_key", b"5555", ["m3"]),
        ("code", b"2222", ["m4", "m5"]),
        ("code", b"3333", ["m6"]),
        ("code", b"9999", []),
        ("cloud_key", b"1111", []),
    ]:
        assert [m.method_id for m in view.methods_with(mode, secret)] == held


@pytest.mark.parametrize("synced", [True, False])
def test_judge_on_the_daemons_clock_decides_on_one_reading(store: Store, synced: bool) -> None:
    """``judge`` without a time takes the time and the trust's verdict from one reading of the
    daemon's clock: it decides as on that reading given, bounded grants and not (a clock not
    trusted refuses only the bounded ones)."""
    gs = {
        "g1": Grant("g1", T0 - HOUR, T0 + HOUR, frozenset({"space-a"}), user_identity_id="u"),
        "g2": Grant("g2", None, None, frozenset({"space-a"})),
        "g3": Grant("g3", T0 + US, None, frozenset({"space-b"})),
    }
    methods = [
        AccessMethod("m1", "g1", "code", secret=b"1111"),
        AccessMethod("m2", "g2", "code", secret=b"2222"),
        AccessMethod("m3", "g3", "card", secret=b"3333"),
    ]
    view = CloudView(gs, methods, ENTRANCES, 1)
    v, trust, clock = validator(store, view, synced, "deny_time_bounded")
    clock.set(T0)
    t, distrust = trust.reading()
    assert t == T0 and bool(distrust) is not synced
    for kind in CredentialKind:
        for secret in [*SECRETS, UNKNOWN]:
            for lock in LOCKS:
                got = v.judge(kind, secret, lock)
                assert got == v._decide(kind, secret, lock, None, t, distrust), (kind, secret)
    assert v.judge(CredentialKind.CODE, b"2222", "a").reason == "valid"
    assert v.judge(CredentialKind.CODE, b"1111", "a").reason == (
        "valid" if synced else "clock_untrusted"
    )
