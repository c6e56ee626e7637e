"""Mobile-key challenges that already passed, per access method (docs/mobile-keys.md).

A lock draws a fresh challenge for every attempt, so a challenge seen twice for one method is
a recorded exchange forwarded again. Kept in the store, so a restart of the gateway does not
forget them; the oldest go once more than ``keep`` are held (a phone makes a few a day).
"""

from __future__ import annotations

from gateway.store.db import Database, StoreFullError

KEEP = 200_000


class SeenChallenges:
    """While the disk is full, pairs that passed are kept in memory (and refused a second
    time all the same) until :meth:`flush` can write them."""

    def __init__(self, db: Database, *, keep: int = KEEP) -> None:
        self._db = db
        self._keep = keep
        self._unsaved: dict[tuple[str, bytes], None] = {}

    def first_use(self, method_id: str, challenge: bytes) -> bool:
        """Record the pair; ``False`` when it was recorded before (a replay)."""
        if (method_id, challenge) in self._unsaved:
            return False
        try:
            return self._record(method_id, challenge)
        except StoreFullError:
            self._unsaved[(method_id, challenge)] = None
            return True

    def flush(self) -> None:
        """Write the pairs kept in memory while the disk was full."""
        if not self._unsaved:
            return
        with self._db.transaction():
            for method_id, challenge in self._unsaved:
                self._record(method_id, challenge)
        self._unsaved.clear()

    def _record(self, method_id: str, challenge: bytes) -> bool:
        with self._db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO mobile_key_challenges VALUES (?, ?)",
                (method_id, challenge),
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "DELETE FROM mobile_key_challenges WHERE rowid <= ?",
                (cur.lastrowid - self._keep,) if cur.lastrowid is not None else (0,),
            )
        return True
