"""The view the validator and planner answer from is one version of the cloud data: a write
committed by another connection while it is read (a full sync's bulk write commits from its
own thread) is wholly in it or wholly out of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.models import CloudChanges
from gateway.secrets import SecretRef
from gateway.store.store import Store
from gateway.views import ViewCache
from tests.core.conftest import snapshot
from tests.core.factories import code, grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_commit_between_the_reads_of_a_view_is_not_half_in_it(tmp_path: Path) -> None:
    key = SecretRef(file=tmp_path / "store.key")
    with Store.open(tmp_path / "db", key) as store, Store.open(tmp_path / "db", key) as other:
        first_data = snapshot([grant("g1", start=T0)], [code("m1", "g1", "1111")])
        store.cloud.apply_snapshot(first_data, T0)
        views = ViewCache(store)
        first = views.current()
        assert set(first.grants) == {"g1"}

        # The other connection adds a grant with its method, in one transaction, at the
        # moment the view's reader starts reading the methods (after it read the grants).
        change = CloudChanges(
            [grant("g2", start=T0)], [code("m2", "g2", "2222")], {}, {}, {}, [], [], None
        )
        done: list[bool] = []

        def write_between(sql: str) -> None:
            if "FROM methods" in sql and not done:
                done.append(True)
                other.cloud.apply_changes(change, T0)

        # A change of this store's own (a sync issue noted) makes a new version: the next
        # view is read anew. (Changes of nothing, events seen alone, keep the version.)
        nothing = CloudChanges([], [], {}, {}, {}, [("space", "s9", "unreadable")], [], None)
        store.cloud.apply_changes(nothing, T0)
        store.db.conn.set_trace_callback(write_between)
        try:
            view = views.current()
        finally:
            store.db.conn.set_trace_callback(None)
        assert done, "the write did not happen during the read"
        # Either both or neither: never g2's method without g2.
        assert ("m2" in view.grant_of) == ("g2" in view.grants)
        assert set(view.grants) == {"g1"} and "m2" not in view.grant_of
        # The view is of the version it read; once this store moves on, the write is seen whole.
        store.cloud.apply_changes(nothing, T0)
        after = views.current()
        assert set(after.grants) == {"g1", "g2"} and after.grant_of["m2"] == "g2"
        assert after.version > view.version
