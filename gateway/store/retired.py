"""Which secrets the store holds for access methods that are not live, per data version.

An offline decision looks a secret up among the live methods in memory (the view). A secret no
live method holds is either revoked (the store keeps tombstones, so the decision can say so) or
unknown; telling which took an HMAC and a query (about 6 µs, more than a whole decision). This
index answers it from memory: the secret indexes (the store's keyed HMAC, never a secret) of
every method that is revoked, has no grant, or whose grant is revoked or missing, read once per
data version. A secret whose index is not in it is unknown; one whose index may be is looked up
in the store as before (so this index only ever saves a query, it never decides).

Only the first 8 bytes of each index are kept, sorted, in one array: 8 bytes a tombstone (a
site that has revoked 100,000 codes over its life holds 0.8 MB here). Two indexes sharing a
prefix make only a lookup that finds nothing.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable

from gateway.cooperative import Slicer
from gateway.store.db import Database

PAGE = 8192
"""Method rows scanned per query (a few milliseconds on a 2-core box), between two yields."""

_RETIRED = (
    "SELECT m.secret_index FROM methods AS m WHERE m.rowid > ? AND m.rowid <= ?"
    " AND m.secret_index IS NOT NULL AND (m.revoked_at IS NOT NULL OR m.grant_id IS NULL"
    " OR NOT EXISTS (SELECT 1 FROM grants AS g"
    " WHERE g.grant_id = m.grant_id AND g.revoked_at IS NULL))"
)
"""The complement of the view's live methods (``CloudView.methods_with``: a method not revoked,
with a grant that exists and is not revoked), among methods with a secret."""


class RetiredSecrets:
    """The secret indexes of the methods that are not live at :attr:`version`."""

    __slots__ = ("_prefixes", "version")

    def __init__(self, version: int, indexes: list[bytes]) -> None:
        self.version = version
        self._prefixes = array("Q", sorted({int.from_bytes(i[:8]) for i in indexes}))

    def __len__(self) -> int:
        return len(self._prefixes)

    def may_hold(self, index: bytes) -> bool:
        """Whether a method that is not live may have this secret index (``False``: none has)."""
        prefixes = self._prefixes
        p = int.from_bytes(index[:8])
        at = bisect_left(prefixes, p)
        return at < len(prefixes) and prefixes[at] == p


async def read_retired(
    db: Database, version: Callable[[], int], slicer: Slicer | None = None
) -> RetiredSecrets | None:
    """The retired secret indexes at the current data version (``version()``), read on the
    event loop's connection a page of rows at a time, giving the loop back between pages.
    ``None`` if the data changed meanwhile (the caller reads again after the next change)."""
    slicer = slicer or Slicer()
    before = version()
    row = db.conn.execute("SELECT max(rowid) FROM methods").fetchone()
    last = int(row[0]) if row is not None and row[0] is not None else 0
    indexes: list[bytes] = []
    for low in range(0, last, PAGE):
        indexes.extend(i for (i,) in db.conn.execute(_RETIRED, (low, low + PAGE)))
        await slicer.tick()
    # Every change of the cloud data raises the version; rows added past ``last`` meanwhile
    # raised it too.
    if version() != before:
        return None
    return RetiredSecrets(before, indexes)
