"""A 50,000-grant workspace: seeded in linear time, paged through without gaps or repeats.

The seeding time is printed (no bound is asserted: figures belong to bench/).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fakecloud import state_from_seed
from fakecloud.clock import ManualClock
from fakecloud.events import EventQuery
from fakecloud.pagination import paginate
from fakecloud.queries import GrantFilter, grant_entries, method_entries

GRANTS = 50_000
SPACES = 10


def _seed() -> dict[str, Any]:
    spaces = [
        {"space_id": f"00000000-0000-4000-8000-{i:012d}", "name": f"S{i}"} for i in range(SPACES)
    ]
    users = [
        {"user_identity_id": f"00000000-0000-4000-9000-{i:012d}", "full_name": f"U{i}"}
        for i in range(500)
    ]
    grants = [
        {
            "user_identity_id": users[i % len(users)]["user_identity_id"],
            "space_ids": [spaces[i % SPACES]["space_id"]],
            "starts_in_s": -3600,
            "ends_in_s": 86400,
            # Every tenth grant gets a generated code: the generator must stay O(1).
            "requested_access_methods": [
                {"mode": "code"} if i % 10 == 0 else {"mode": "code", "code": f"{i:08d}"},
                {"mode": "card", "card_number": f"9{i:09d}"},
            ],
        }
        for i in range(GRANTS)
    ]
    return {"spaces": spaces, "user_identities": users, "access_grants": grants}


def test_fifty_thousand_grants_seed_and_page(capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(datetime(2025, 6, 16, 12, 0, tzinfo=UTC))
    seed = _seed()
    started = time.perf_counter()
    state = state_from_seed(seed, now=clock, rng=random.Random(3))
    seeded_s = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nfake cloud: {GRANTS:,} grants x 2 access methods seeded in {seeded_s:.2f} s")

    assert len(state.access_grants) == GRANTS
    assert len(state.access_methods) == 2 * GRANTS
    codes = [m["code"] for m in state.access_methods if m["mode"] == "code"]
    assert len(set(codes)) == GRANTS, "a generated code repeats another method's code"

    # Page through one space's grants and methods the way a gateway does: 500 a page.
    space = seed["spaces"][3]["space_id"]
    where = GrantFilter(space_id=space)
    for source, expected in (
        (lambda after: grant_entries(state, where, after), GRANTS // SPACES),
        (lambda after: method_entries(state, where, after), 2 * GRANTS // SPACES),
    ):
        seen: list[str] = []
        cursor = None
        while True:
            page = paginate(source, scope="s", limit=500, cursor=cursor)
            seen.extend(str(o.get("access_grant_id") or o["access_method_id"]) for o in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == expected
        assert len(set(seen)) == expected

    # Changes after seeding are found by time without reading the 150,000 seeding events.
    clock.advance(5)
    state.grants.delete(state.access_grants.keys()[7])
    news = state.events.query(EventQuery(after=clock() - timedelta(seconds=1)))
    assert [e["event_type"] for e in news] == [
        "access_method.deleted",
        "access_method.deleted",
        "access_grant.deleted",
    ]
