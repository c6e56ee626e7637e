"""Grants, access methods, entrances and the raw cloud objects: written whole, read by all.

A full snapshot replaces the previous one in one transaction; what it no longer holds is
tombstoned (``revoked_at``), not deleted, so the validator can still say *revoked* instead of
*unknown*. Incremental changes from cloud events apply in one transaction with the event cursor.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, filterfalse, groupby
from operator import attrgetter, itemgetter, not_

from gateway.cooperative import Slicer
from gateway.models import (
    AccessMethod,
    CloudChanges,
    CloudSnapshot,
    Entrance,
    Grant,
    SeamNote,
)
from gateway.store.crypto import SecretBox
from gateway.store.db import Database
from gateway.store.meta import Meta
from gateway.store.timefmt import from_db, to_db

GONE_FROM_CLOUD = "deleted in the cloud (no longer listed)"
_GRANT_ID = attrgetter("grant_id")
_METHOD_ID = attrgetter("method_id")


METHOD_CHUNK = 500
"""Methods compared with their stored rows (and sealed if changed) this many at a time."""
SEEN_CHUNK = 500
"""Event ids per ``IN (...)`` query (well under SQLite's limit on bound parameters)."""

_UPSERT_GRANT = (
    "INSERT INTO grants (grant_id, starts_at, ends_at, user_identity_id, display_name, space_ids, "
    "entrance_ids, device_ids, problem, revoked_at, revoked_reason, seam_notes) VALUES (?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (grant_id) DO UPDATE SET starts_at = "
    "excluded.starts_at, ends_at = excluded.ends_at, user_identity_id = "
    "excluded.user_identity_id, display_name = excluded.display_name, space_ids = "
    "excluded.space_ids, entrance_ids = excluded.entrance_ids, device_ids = excluded.device_ids, "
    "problem = excluded.problem, revoked_at = excluded.revoked_at, revoked_reason = "
    "excluded.revoked_reason, seam_notes = excluded.seam_notes WHERE grants.starts_at IS NOT "
    "excluded.starts_at OR grants.ends_at IS NOT excluded.ends_at OR grants.user_identity_id IS "
    "NOT excluded.user_identity_id OR grants.display_name IS NOT excluded.display_name OR "
    "grants.space_ids IS NOT excluded.space_ids OR grants.entrance_ids IS NOT "
    "excluded.entrance_ids OR grants.device_ids IS NOT excluded.device_ids OR grants.problem IS "
    "NOT excluded.problem OR grants.revoked_at IS NOT excluded.revoked_at OR "
    "grants.revoked_reason IS NOT excluded.revoked_reason OR grants.seam_notes IS NOT "
    "excluded.seam_notes"
)
"""Writes a grant row only when it is new or differs from the stored one."""
LIVE_IDS_PAGE = 1000
"""Live grant ids read per query by :meth:`CloudData.live_grants_not_in`."""
_LIVE_IDS = "SELECT grant_id FROM grants WHERE revoked_at IS NULL"
_UPSERT_RAW = (
    "INSERT INTO cloud_objects VALUES (?, ?, ?) ON CONFLICT (object_type, object_id)"
    " DO UPDATE SET raw = excluded.raw WHERE cloud_objects.raw IS NOT excluded.raw"
)
_GRANT_COLUMNS = (
    "grant_id",
    "starts_at",
    "ends_at",
    "user_identity_id",
    "display_name",
    "space_ids",
    "entrance_ids",
    "device_ids",
    "problem",
    "revoked_at",
    "revoked_reason",
    "seam_notes",
)
"""The columns of a grant row, in :func:`_grant_row`'s order."""
_METHOD_COLUMNS = (
    "method_id, grant_id, mode, display_name, secret_ct, secret_index, problem, revoked_at,"
    " revoked_reason, issued, seam_notes"
)
_METHOD_COLUMN_NAMES = tuple(_METHOD_COLUMNS.split(", "))
_METHOD_KEY = (
    "method_id, grant_id, mode, display_name, secret_index, problem, revoked_at,"
    " revoked_reason, issued, seam_notes"
)
"""The columns that tell whether a stored method row is this method (the sealed secret is
random each time; its keyed index says whether the secret changed)."""


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Grants and methods of a snapshot whose rows the store holds as they are, at data
    version :attr:`version` (the sync read them exactly as it had before): they are not
    compared or written again. Every id here must be a live row at that version."""

    version: int
    grant_ids: set[str]
    method_ids: set[str]


class StaleSnapshot(Exception):
    """The store's data version is no longer the one a snapshot's :class:`Unchanged` was
    made against: the snapshot must be read again in full."""


def _meta_set(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


class CloudData:
    def __init__(self, db: Database, box: SecretBox, meta: Meta) -> None:
        self._db = db
        self._box = box
        self._meta = meta

    @property
    def version(self) -> int:
        """Increases with every committed change: caches compare it."""
        return self._meta.data_version.current

    # --- writing -----------------------------------------------------------------------------
    def apply_snapshot(self, snap: CloudSnapshot, now: datetime) -> int:
        """Replace the snapshot in one transaction; returns the new data version."""
        with self._db.transaction() as conn:
            self._write_snapshot(conn, snap, now)
            return _version(conn)

    async def apply_snapshot_sliced(
        self,
        snap: CloudSnapshot,
        now: datetime,
        then: CloudChanges | None = None,
        *,
        same: Unchanged | None = None,
    ) -> int:
        """:meth:`apply_snapshot` (and ``then``, in the same transaction) for tens of thousands
        of grants, on the store's bulk connection in a worker thread, so the event loop goes
        on serving. Only rows that changed are written (and only their secrets sealed).

        The comparing, sealing and row building are staged first without the database's write
        lock (:meth:`Database.bulk_write`'s ``prepare``), so the loop's own writes (access
        events, replay records) never wait for them; the write transaction then only moves
        the staged rows in, at once for readers. If the cloud data changed between the two
        (an incremental sync committed), the snapshot is written the whole way under the lock
        instead. Returns the data version it committed: the same as before if the snapshot
        changed nothing (no row written, so caches of the version stay good).

        A first sync (the store holds no grant, method or raw object yet) stages nothing:
        every row is new, and staging them would write each twice. They are sealed and
        written under the lock (:meth:`_write_first`), which is held longer then (about 0.9 s
        instead of 0.6 s for 10,000 grants on a loaded 2-core machine); no door waits on data
        that is not there yet, and the loop's writers wait in their own tasks.

        ``same``: the grants and methods known to be stored as they are (not staged, not
        compared); :class:`StaleSnapshot` if the store is no longer at its version."""
        staged_at: list[int] = []
        first: list[bool] = []

        def prepare(conn: sqlite3.Connection) -> None:
            if _holds_no_objects(conn):  # a first sync: nothing to compare, nothing to stage
                first.append(True)
                staged_at.append(_version(conn))
                if same is not None and same.version != staged_at[0]:
                    raise StaleSnapshot
            else:
                staged_at.append(self._stage_snapshot(conn, snap, same))

        def write(conn: sqlite3.Connection) -> int:
            if _version(conn) != staged_at[0] and same is not None:
                raise StaleSnapshot
            if first and _holds_no_objects(conn):
                self._write_first(conn, snap, now)
            elif _version(conn) == staged_at[0] and not first:
                self._move_staged(conn, snap, now)
            else:  # the staged difference (or the emptiness seen) is of older data
                self._write_snapshot(conn, snap, now)
            if then is not None:
                self._write_changes(conn, then, now)
            return _version(conn)

        return await self._db.bulk_write(write, prepare=prepare)

    def apply_changes(self, changes: CloudChanges, now: datetime) -> None:
        with self._db.transaction() as conn:
            self._write_changes(conn, changes, now)

    def _write_snapshot(self, conn: sqlite3.Connection, snap: CloudSnapshot, now: datetime) -> None:
        self._upsert(conn, snap.grants, snap.methods, snap.raw)
        self._tombstone_missing(conn, "grants", "grant_id", (g.grant_id for g in snap.grants), now)
        self._tombstone_missing(
            conn, "methods", "method_id", (m.method_id for m in snap.methods), now
        )
        self._snapshot_rest(conn, snap, now)

    def _write_first(self, conn: sqlite3.Connection, snap: CloudSnapshot, now: datetime) -> None:
        """:meth:`_write_snapshot` into a store that holds no grant, method or raw object yet
        (a first sync): every row is new, so none is compared, staged or tombstoned; the rows
        go straight in, made one at a time as SQLite asks for them (secrets sealed then).
        The tables' own indexes are dropped first and made again after the rows, in this
        transaction: one sort per index costs less than an insert at a random place per row."""
        indexes = conn.execute(
            "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN ('grants', 'methods', 'cloud_objects')"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX main."{name}"')
        written = _insert_in_order(
            conn, "grants", _GRANT_COLUMNS, (_grant_row(g) for g in snap.grants)
        )
        written += _insert_in_order(
            conn,
            "methods",
            _METHOD_COLUMN_NAMES,
            (self._method_row(m) for m in snap.methods),
        )
        written += conn.executemany(
            "INSERT OR REPLACE INTO cloud_objects VALUES (?, ?, ?)",
            ((kind, oid, text) for kind, items in snap.raw.items() for oid, text in items),
        ).rowcount
        for _, sql in indexes:
            conn.execute(sql)
        self._snapshot_rest(conn, snap, now, changed=written > 0)

    def _method_row(self, m: AccessMethod) -> tuple[object, ...]:
        """The row of a method, in ``_METHOD_COLUMNS``' order, its secret sealed."""
        secret = m.secret
        return (
            m.method_id,
            m.grant_id,
            m.mode,
            m.display_name,
            None if secret is None else self._box.seal(secret, m.method_id),
            None if secret is None else self._box.index(m.mode, secret),
            m.problem,
            to_db(m.revoked_at),
            m.revoked_reason,
            int(m.issued),
            _notes_to_db(m.seam_notes),
        )

    def _stage_snapshot(
        self, conn: sqlite3.Connection, snap: CloudSnapshot, same: Unchanged | None = None
    ) -> int:
        """In a read transaction on ``conn``: TEMP tables of the rows :meth:`_write_snapshot`
        would write (those new or changed, secrets sealed; none of ``same``) and of the live
        ids it would tombstone. Returns the data version they were compared with."""
        version = _version(conn)
        if same is not None and same.version != version:
            raise StaleSnapshot
        skip_grants: Container[str] = same.grant_ids if same is not None else ()
        skip_methods: Container[str] = same.method_ids if same is not None else ()
        grant_cols = ", ".join(_GRANT_COLUMNS)
        conn.execute("CREATE TEMP TABLE staged_grants AS SELECT * FROM main.grants WHERE 0")
        conn.executemany(
            f"INSERT INTO temp.staged_grants ({grant_cols})"  # noqa: S608 - constant columns
            f" VALUES ({', '.join('?' * len(_GRANT_COLUMNS))})",
            (_grant_row(g) for g in snap.grants if g.grant_id not in skip_grants),
        )
        _stage_gone(conn, "grants", "grant_id", map(_GRANT_ID, snap.grants), same)
        same_row = " AND ".join(f"g.{c} IS s.{c}" for c in _GRANT_COLUMNS[1:])
        conn.execute(
            "DELETE FROM temp.staged_grants AS s WHERE EXISTS (SELECT 1 FROM main.grants AS g"  # noqa: S608
            f" WHERE g.grant_id = s.grant_id AND {same_row})"
        )
        conn.execute("CREATE TEMP TABLE staged_methods AS SELECT * FROM main.methods WHERE 0")
        method_ids = list(map(_METHOD_ID, snap.methods))
        changed = list(
            compress(snap.methods, map(not_, map(skip_methods.__contains__, method_ids)))
        )
        for i in range(0, len(changed), METHOD_CHUNK):
            conn.executemany(
                f"INSERT INTO temp.staged_methods ({_METHOD_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._changed_methods(conn, changed[i : i + METHOD_CHUNK]),
            )
        _stage_gone(conn, "methods", "method_id", method_ids, same)
        conn.execute("CREATE TEMP TABLE staged_raw AS SELECT * FROM main.cloud_objects WHERE 0")
        conn.executemany(
            "INSERT OR REPLACE INTO temp.staged_raw VALUES (?, ?, ?)",
            ((kind, oid, text) for kind, items in snap.raw.items() for oid, text in items),
        )
        conn.execute(
            "DELETE FROM temp.staged_raw AS s WHERE EXISTS (SELECT 1 FROM main.cloud_objects AS c"
            " WHERE c.object_type = s.object_type AND c.object_id = s.object_id AND c.raw = s.raw)"
        )
        return version

    def _move_staged(self, conn: sqlite3.Connection, snap: CloudSnapshot, now: datetime) -> None:
        """:meth:`_write_snapshot` from what :meth:`_stage_snapshot` staged on ``conn``: a few
        statements that SQLite runs whole, however many rows changed. The data version rises
        only if something did change."""
        grant_cols = ", ".join(_GRANT_COLUMNS)
        written = conn.execute(
            f"INSERT OR REPLACE INTO grants ({grant_cols})"  # noqa: S608 - constant columns
            f" SELECT {grant_cols} FROM temp.staged_grants"
        ).rowcount
        written += conn.execute(
            f"INSERT OR REPLACE INTO methods ({_METHOD_COLUMNS})"  # noqa: S608
            f" SELECT {_METHOD_COLUMNS} FROM temp.staged_methods"
        ).rowcount
        written += conn.execute(
            "INSERT OR REPLACE INTO cloud_objects SELECT * FROM temp.staged_raw"
        ).rowcount
        for table, key, gone in (
            ("grants", "grant_id", "gone_grants"),
            ("methods", "method_id", "gone_methods"),
        ):
            written += conn.execute(
                f"UPDATE {table} SET revoked_at = ?, revoked_reason = ?"  # noqa: S608
                f" WHERE revoked_at IS NULL AND {key} IN (SELECT id FROM temp.{gone})",
                (to_db(now), GONE_FROM_CLOUD),
            ).rowcount
        self._snapshot_rest(conn, snap, now, changed=written > 0)

    def _snapshot_rest(
        self, conn: sqlite3.Connection, snap: CloudSnapshot, now: datetime, *, changed: bool = True
    ) -> None:
        """What a snapshot writes after its grants and methods (small: entrances, issues),
        and the new data version if anything changed (``changed``: rows already did)."""
        entrances = [(e.entrance_id, json.dumps(sorted(e.space_ids))) for e in snap.entrances]
        stored = sorted((r[0], r[1]) for r in conn.execute("SELECT * FROM entrances"))
        if changed or sorted(entrances) != stored:
            conn.execute("DELETE FROM entrances")
            conn.executemany("INSERT INTO entrances VALUES (?, ?)", entrances)
            changed = True
        if snap.gone_reasons:
            self._gone_reasons(conn, snap.gone_reasons, now)
            changed = True
        issues = {
            (r[0], r[1], r[2])
            for r in conn.execute("SELECT object_type, object_id, problem FROM sync_issues")
        }
        if issues != set(snap.issues):
            conn.execute("DELETE FROM sync_issues")
            self._issues(conn, snap.issues, now)
            changed = True
        _meta_set(conn, "last_full_sync", to_db(now) or "")
        if changed:
            self._meta.data_version.bump(conn)

    def _write_changes(
        self, conn: sqlite3.Connection, changes: CloudChanges, now: datetime
    ) -> None:
        self._upsert(conn, changes.grants, changes.methods, changes.raw)
        stamp = to_db(now)
        grant_reasons = changes.deleted_grant_ids
        method_reasons = changes.deleted_method_ids
        conn.executemany(
            "UPDATE grants SET revoked_at = ?, revoked_reason = ?"
            " WHERE grant_id = ? AND revoked_at IS NULL",
            [(stamp, why, gid) for gid, why in grant_reasons.items()],
        )
        conn.executemany(
            "UPDATE methods SET revoked_at = ?, revoked_reason = ?"
            " WHERE (method_id = ? OR grant_id = ?) AND revoked_at IS NULL",
            [(stamp, why, mid, None) for mid, why in method_reasons.items()]
            + [(stamp, why, None, gid) for gid, why in grant_reasons.items()],
        )
        self._issues(conn, changes.issues, now)
        conn.executemany(
            "INSERT OR IGNORE INTO cloud_events_seen VALUES (?, ?)", changes.seen_event_ids
        )
        if changes.cursor is not None:
            _meta_set(conn, "event_cursor", changes.cursor)
        _meta_set(conn, "last_sync", stamp or "")
        if (
            changes.grants
            or changes.methods
            or grant_reasons
            or method_reasons
            or changes.raw
            or changes.issues
        ):
            self._meta.data_version.bump(conn)  # not for events seen alone: no data changed

    def _upsert(
        self,
        conn: sqlite3.Connection,
        grants: list[Grant],
        methods: list[AccessMethod],
        raw: dict[str, list[tuple[str, str]]],
    ) -> None:
        """Write the rows that are new or differ from the stored ones, nothing else: a full
        sync of an unchanged site writes (and seals) nothing. Rows are made one at a time as
        SQLite asks for them, so tens of thousands are never all held at once."""
        conn.executemany(_UPSERT_GRANT, (_grant_row(g) for g in grants))
        for i in range(0, len(methods), METHOD_CHUNK):
            conn.executemany(
                f"INSERT OR REPLACE INTO methods ({_METHOD_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._changed_methods(conn, methods[i : i + METHOD_CHUNK]),
            )
        conn.executemany(
            _UPSERT_RAW, ((kind, oid, text) for kind, items in raw.items() for oid, text in items)
        )

    def _changed_methods(
        self, conn: sqlite3.Connection, chunk: list[AccessMethod]
    ) -> list[tuple[object, ...]]:
        """Rows of the methods in ``chunk`` that are new or changed, their secrets sealed."""
        ids = [m.method_id for m in chunk]
        stored = {
            row[0]: tuple(row)
            for row in conn.execute(
                f"SELECT {_METHOD_KEY} FROM methods"  # noqa: S608 - constant columns
                f" WHERE method_id IN ({','.join('?' * len(ids))})",
                ids,
            )
        }
        rows: list[tuple[object, ...]] = []
        for m in chunk:
            index = None if m.secret is None else self._box.index(m.mode, m.secret)
            key = (
                m.method_id,
                m.grant_id,
                m.mode,
                m.display_name,
                index,
                m.problem,
                to_db(m.revoked_at),
                m.revoked_reason,
                int(m.issued),
                _notes_to_db(m.seam_notes),
            )
            if stored.get(m.method_id) == key:
                continue
            sealed = None if m.secret is None else self._box.seal(m.secret, m.method_id)
            rows.append((*key[:4], sealed, *key[4:]))
        return rows

    def _tombstone_missing(
        self, conn: sqlite3.Connection, table: str, key: str, keep: Iterable[str], now: datetime
    ) -> None:
        """Tombstone the live rows whose ids are not in ``keep``: the live ids are read and
        compared here (a set of ids in memory costs less than a temporary table of them)."""
        kept = set(keep)
        live = conn.execute(f"SELECT {key} FROM {table} WHERE revoked_at IS NULL")  # noqa: S608
        gone = [oid for (oid,) in live if oid not in kept]
        stamp = to_db(now)
        conn.executemany(
            f"UPDATE {table} SET revoked_at = ?, revoked_reason = ? WHERE {key} = ?",  # noqa: S608
            [(stamp, GONE_FROM_CLOUD, oid) for oid in gone],
        )

    def _gone_reasons(
        self, conn: sqlite3.Connection, reasons: dict[str, str], now: datetime
    ) -> None:
        """Say why grants this snapshot tombstoned are gone (their user identity was deleted,
        for one), on the grants and on their access methods."""
        stamp = to_db(now)
        conn.executemany(
            "UPDATE grants SET revoked_reason = ? WHERE grant_id = ? AND revoked_at = ?",
            [(why, gid, stamp) for gid, why in reasons.items()],
        )
        conn.executemany(
            "UPDATE methods SET revoked_reason = ? WHERE grant_id = ? AND revoked_at = ?",
            [(why, gid, stamp) for gid, why in reasons.items()],
        )

    def _issues(
        self, conn: sqlite3.Connection, issues: Iterable[tuple[str, str, str]], now: datetime
    ) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO sync_issues VALUES (?, ?, ?, ?)",
            [(t, oid, problem, to_db(now)) for t, oid, problem in issues],
        )

    # --- reading -----------------------------------------------------------------------------
    def grants(self, *, include_revoked: bool = False) -> dict[str, Grant]:
        sql = "SELECT * FROM grants"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return {row["grant_id"]: _grant(row) for row in self._db.conn.execute(sql)}

    def live_grants(self) -> int:
        """How many grants are live (not tombstoned)."""
        (count,) = self._db.conn.execute(
            "SELECT count(*) FROM grants WHERE revoked_at IS NULL"
        ).fetchone()
        return int(count)

    async def live_grants_not_in(
        self, keep: Collection[str], slicer: Slicer, *, live_among: Collection[str] = ()
    ) -> list[Grant]:
        """Live grants whose ids are not in ``keep`` (those a new snapshot no longer lists),
        read a page of ids at a time in id order, giving the event loop back between pages
        (reading 50,000 ids in one go held it for 60 ms).

        ``live_among``: ids of ``keep`` known to be live rows. When the live rows number
        exactly those plus the live ones among ``keep``'s few others, none is missing from
        ``keep``, and no id is read."""
        if live_among:
            others = [gid for gid in keep if gid not in live_among]
            if len(others) <= LIVE_IDS_PAGE * 5:
                live_others = 0
                for i in range(0, len(others), SEEN_CHUNK):
                    part = others[i : i + SEEN_CHUNK]
                    (n,) = self._db.conn.execute(
                        "SELECT count(*) FROM grants WHERE revoked_at IS NULL"  # noqa: S608
                        f" AND grant_id IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchone()
                    live_others += n
                if self.live_grants() == len(live_among) + live_others:
                    return []
        ids = []
        after: str | None = None
        while True:
            cursor = self._db.conn.cursor()
            cursor.row_factory = None  # plain tuples: no Row object per id
            if after is None:
                cursor.execute(_LIVE_IDS + " ORDER BY grant_id LIMIT ?", (LIVE_IDS_PAGE,))
            else:
                cursor.execute(
                    _LIVE_IDS + " AND grant_id > ? ORDER BY grant_id LIMIT ?",
                    (after, LIVE_IDS_PAGE),
                )
            page = cursor.fetchall()
            for (gid,) in page:
                if gid not in keep:
                    ids.append(gid)
            if len(page) < LIVE_IDS_PAGE:
                break
            after = page[-1][0]
            await slicer.tick()
        return [g for g in (self.grant(gid) for gid in ids) if g is not None]

    def loaded(self) -> tuple[int, dict[str, Grant], list[AccessMethod], list[Entrance]]:
        """The data version with the live grants, live methods (secrets opened) and entrances
        of exactly that version: read in one read transaction, so a write committed meanwhile
        (a bulk write's thread) is either all in it or not at all."""
        with self._db.reading() as conn:
            return _version(conn), self.grants(), self.methods(), self.entrances()

    async def load_sliced(
        self, slicer: Slicer
    ) -> tuple[dict[str, Grant], list[AccessMethod], list[Entrance]]:
        """Live grants, live methods (secrets opened) and entrances, read in slices that give
        the event loop back. Callers compare :attr:`version` before and after."""
        grants: dict[str, Grant] = {}
        for row in self._db.conn.execute("SELECT * FROM grants WHERE revoked_at IS NULL"):
            grants[row["grant_id"]] = _grant(row)
            await slicer.tick()
        methods: list[AccessMethod] = []
        for row in self._db.conn.execute("SELECT * FROM methods WHERE revoked_at IS NULL"):
            methods.append(self._method(row))
            await slicer.tick()
        return grants, methods, self.entrances()

    def grant(self, grant_id: str) -> Grant | None:
        row = self._db.conn.execute(
            "SELECT * FROM grants WHERE grant_id = ?", (grant_id,)
        ).fetchone()
        return None if row is None else _grant(row)

    def methods(self, *, include_revoked: bool = False) -> list[AccessMethod]:
        sql = "SELECT * FROM methods"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [self._method(row) for row in self._db.conn.execute(sql)]

    def methods_of_grant(self, grant_id: str) -> list[AccessMethod]:
        rows = self._db.conn.execute("SELECT * FROM methods WHERE grant_id = ?", (grant_id,))
        return [self._method(row) for row in rows]

    def grant_of_method(self, method_id: str) -> str | None:
        row = self._db.conn.execute(
            "SELECT grant_id FROM methods WHERE method_id = ?", (method_id,)
        ).fetchone()
        return None if row is None else row[0]

    def find_by_secret(self, mode: str, secret: bytes) -> list[AccessMethod]:
        """Methods (revoked ones too) whose secret is exactly this one."""
        rows = self._db.conn.execute(
            "SELECT * FROM methods WHERE secret_index = ?", (self._box.index(mode, secret),)
        )
        return [m for m in (self._method(row) for row in rows) if m.secret == secret]

    def entrances(self) -> list[Entrance]:
        return [
            Entrance(row[0], frozenset(json.loads(row[1])))
            for row in self._db.conn.execute("SELECT * FROM entrances")
        ]

    def issues(self) -> list[tuple[str, str, str]]:
        return [
            (row[0], row[1], row[2])
            for row in self._db.conn.execute("SELECT * FROM sync_issues ORDER BY 1, 2")
        ]

    def raw(self, object_type: str, object_id: str) -> dict[str, object] | None:
        row = self._db.conn.execute(
            "SELECT raw FROM cloud_objects WHERE object_type = ? AND object_id = ?",
            (object_type, object_id),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def event_seen(self, event_id: str) -> bool:
        return bool(self.seen_among([event_id]))

    def seen_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` were seen before: one query per 500 ids, not one per id (an
        idle gateway asks about the same page of old events every poll)."""
        seen: set[str] = set()
        for i in range(0, len(event_ids), SEEN_CHUNK):
            part = event_ids[i : i + SEEN_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.conn.execute(
                f"SELECT event_id FROM cloud_events_seen WHERE event_id IN ({marks})",  # noqa: S608
                part,
            )
            seen.update(r[0] for r in rows)
        return seen

    def _method(self, row: sqlite3.Row) -> AccessMethod:
        secret = None
        if row["secret_ct"] is not None:
            secret = self._box.open(row["secret_ct"], row["method_id"])
        return AccessMethod(
            method_id=row["method_id"],
            grant_id=row["grant_id"],
            mode=row["mode"],
            secret=secret,
            problem=row["problem"],
            display_name=row["display_name"],
            revoked_at=from_db(row["revoked_at"]),
            revoked_reason=row["revoked_reason"],
            issued=bool(row["issued"]),
            seam_notes=_notes_from_db(row["seam_notes"]),
        )


def _stage_gone(
    conn: sqlite3.Connection,
    table: str,
    key: str,
    ids: Iterable[str],
    same: Unchanged | None,
) -> None:
    """TEMP table ``gone_<table>`` of the live ids of ``table`` not among ``ids`` (those a
    snapshot tombstones). Every id of ``same`` is a live row and in ``ids``: when the live rows
    number exactly those plus the live ones among the others, no live row is missing from
    ``ids``, and the table is left empty without comparing every id."""
    kept: set[str] = set()
    if same is not None:
        kept = same.grant_ids if table == "grants" else same.method_ids
    conn.execute(f"CREATE TEMP TABLE gone_{table} (id TEXT PRIMARY KEY)")
    conn.execute(f"CREATE TEMP TABLE keep_{table} (id TEXT PRIMARY KEY)")
    keep = f"INSERT OR IGNORE INTO temp.keep_{table} VALUES (?)"  # noqa: S608
    conn.executemany(keep, zip(filterfalse(kept.__contains__, ids)))
    if kept:
        (live,) = conn.execute(
            f"SELECT count(*) FROM main.{table} WHERE revoked_at IS NULL"  # noqa: S608
        ).fetchone()
        (others,) = conn.execute(
            f"SELECT count(*) FROM main.{table} WHERE revoked_at IS NULL"  # noqa: S608
            f" AND {key} IN (SELECT id FROM temp.keep_{table})"
        ).fetchone()
        if live == len(kept) + others:
            return
        conn.executemany(keep, ((i,) for i in kept))
    conn.execute(
        f"INSERT INTO temp.gone_{table} SELECT {key} FROM main.{table}"  # noqa: S608
        f" WHERE revoked_at IS NULL AND {key} NOT IN (SELECT id FROM temp.keep_{table})"
    )


_NULL_WHEN_LIVE = ("problem", "revoked_at", "revoked_reason")
"""Columns of grants and methods that are NULL on a live row read without a problem (almost
every row of a first sync), and that default to NULL."""


def _insert_in_order(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Iterable[tuple[object, ...]],
) -> int:
    """``INSERT OR REPLACE`` each of ``rows`` (values of ``columns``) in their order; returns
    how many were written. A run of rows whose :data:`_NULL_WHEN_LIVE` columns are all NULL
    goes in without those columns (they default to NULL): the sqlite3 module binds each
    ``None`` (and ``bytes``) through its adapter lookup, ~0.45 us a value against ~0.1 us
    for an ``int``, which was 15% of a first sync's inserts (measured: 40,000 grants and
    methods with 40,110 raw objects, 0.50 s -> 0.42 s CPU, the least of 8 runs each)."""
    nullable = [n for n, c in enumerate(columns) if c in _NULL_WHEN_LIVE]
    kept = [n for n in range(len(columns)) if n not in nullable]
    if len(nullable) < 2 or len(kept) < 2:  # (itemgetter of one index gives no tuple)
        raise ValueError(f"{table}: not a table with the columns {_NULL_WHEN_LIVE}")
    bare = (None,) * len(nullable)
    nulls, short = itemgetter(*nullable), itemgetter(*kept)
    every = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)})"
    every += f" VALUES ({', '.join('?' * len(columns))})"
    fewer = f"INSERT OR REPLACE INTO {table} ({', '.join(columns[n] for n in kept)})"
    fewer += f" VALUES ({', '.join('?' * len(kept))})"
    written = 0
    for key, run in groupby(rows, nulls):  # (runs in order: the rows' rowids are as before)
        if key == bare:
            written += conn.executemany(fewer, map(short, run)).rowcount
        else:
            written += conn.executemany(every, run).rowcount
    return written


def _holds_no_objects(conn: sqlite3.Connection) -> bool:
    """Whether the store holds no grant, access method or raw cloud object at all (not even
    a tombstone): what a first sync finds."""
    row = conn.execute(
        "SELECT NOT EXISTS (SELECT 1 FROM grants) AND NOT EXISTS (SELECT 1 FROM methods)"
        " AND NOT EXISTS (SELECT 1 FROM cloud_objects)"
    ).fetchone()
    return bool(row[0])


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
    return int(row[0]) if row is not None and row[0] else 0


def _grant_row(g: Grant) -> tuple[object, ...]:
    return (
        g.grant_id,
        to_db(g.starts_at),
        to_db(g.ends_at),
        g.user_identity_id,
        g.display_name,
        _ids_to_db(g.space_ids),
        _ids_to_db(g.entrance_ids),
        _ids_to_db(g.device_ids),
        g.problem,
        to_db(g.revoked_at),
        g.revoked_reason,
        _notes_to_db(g.seam_notes),
    )


def _grant(row: sqlite3.Row) -> Grant:
    return Grant(
        grant_id=row["grant_id"],
        starts_at=from_db(row["starts_at"]),
        ends_at=from_db(row["ends_at"]),
        space_ids=frozenset(json.loads(row["space_ids"])),
        entrance_ids=frozenset(json.loads(row["entrance_ids"])),
        device_ids=frozenset(json.loads(row["device_ids"])),
        user_identity_id=row["user_identity_id"],
        display_name=row["display_name"],
        problem=row["problem"],
        revoked_at=from_db(row["revoked_at"]),
        revoked_reason=row["revoked_reason"],
        seam_notes=_notes_from_db(row["seam_notes"]),
    )


@functools.lru_cache(maxsize=4096)
def _ids_to_db(ids: frozenset[str]) -> str:
    """The JSON text of a set of ids, once per distinct set (grants share a few dozen)."""
    return json.dumps(sorted(ids))


def _notes_to_db(notes: tuple[SeamNote, ...]) -> str:
    if not notes:
        return "[]"  # most objects: no call to the encoder
    return json.dumps([[n.kind, n.code, n.message] for n in notes])


def _notes_from_db(text: str | None) -> tuple[SeamNote, ...]:
    return tuple(SeamNote(*(str(x) for x in item)) for item in json.loads(text or "[]"))
