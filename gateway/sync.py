"""Cloud sync: a whole snapshot now and then, cheap incremental polls in between.

A full sync fetches everything in the gateway's scope (the spaces, entrances and devices its
locks serve) into memory, and only when every page has arrived does it replace the previous
snapshot, in one transaction. Between full syncs, ``/events/list`` since the last event seen
says which grants changed; only those are fetched again. Deleted grants and methods are
noticed either way: an event names them, or the next snapshot no longer holds them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter, eq
from typing import Any

import msgspec

from gateway import heap
from gateway.clock import Clock
from gateway.cloud.client import CloudClient, RawPage, Recall, split_page
from gateway.cloud.errors import CloudError, CloudNotFoundError
from gateway.cloud.models import (
    CloudEntrance,
    being_deleted,
    parse_grant,
    parse_method,
    raw_without_secrets,
    scrubbed,
    seam_notes,
)
from gateway.config import GatewayConfig
from gateway.cooperative import Slicer, settle, settle_big
from gateway.models import (
    AccessMethod,
    CloudChanges,
    CloudSnapshot,
    Entrance,
    Grant,
    SeamNote,
)
from gateway.planner import CloudView
from gateway.store.cloud_data import GONE_FROM_CLOUD, StaleSnapshot, Unchanged
from gateway.store.store import Store
from gateway.store.timefmt import from_db, to_db
from gateway.sync_issues import issues_in, log_new_issues
from gateway.sync_memo import GrantRead, MethodRead, ObjectMemo, PageRead
from gateway.views import ViewCache

log = logging.getLogger(__name__)
_GRANT = attrgetter("grant")
_GRANT_ID = attrgetter("grant_id")
_DIGEST = attrgetter("digest")
_METHOD_IDS = attrgetter("method_ids")
_METHOD = attrgetter("method")
_OWNER = attrgetter("owner")
_NOTES = attrgetter("seam_notes")
_USER = attrgetter("user_identity_id")

EVENT_OVERLAP = timedelta(seconds=5)
"""Ask for events a little before the cursor: ids already seen are skipped."""
EVENTS_PAGE = 1000
"""Events asked for at a time. The cloud lists them oldest first: a full page may leave
events after it unread, so a poll that gets one reads everything instead (a full sync)."""
CHUNK = 100


@dataclass(frozen=True, slots=True)
class Scope:
    space_ids: frozenset[str]
    entrance_ids: frozenset[str]
    device_ids: frozenset[str]

    @classmethod
    def of(cls, config: GatewayConfig) -> Scope:
        return cls(
            frozenset(s for lock in config.locks for s in lock.space_ids),
            frozenset(e for lock in config.locks for e in lock.acs_entrance_ids),
            frozenset(d for lock in config.locks for d in lock.device_ids),
        )

    def covers(self, grant: Grant, spaces: frozenset[str]) -> bool:
        """Whether the gateway serves ``grant`` (``spaces``: :attr:`space_ids` and those of
        its entrances, united once by the caller)."""
        return bool(
            not grant.space_ids.isdisjoint(spaces)
            or grant.entrance_ids & self.entrance_ids
            or grant.device_ids & self.device_ids
        )


@dataclass(slots=True)
class SyncReport:
    kind: str
    grants: int = 0
    methods: int = 0
    deleted: int = 0
    issues: list[tuple[str, str, str]] = field(default_factory=list)


class CloudSync:
    def __init__(
        self,
        client: CloudClient,
        store: Store,
        scope: Scope,
        clock: Clock,
        *,
        page_size: int = 500,
        on_change: Callable[[], None] = lambda: None,
        views: ViewCache | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._scope = scope
        self._clock = clock
        self._page_size = page_size
        self._on_change = on_change
        self._views = views
        self._memo = ObjectMemo()
        self._heard_until: datetime | None = None
        """The server's time (``Date``) of the last poll whose answer held every event after
        the cursor and was applied: polls ask from it when it is past the stored cursor (the
        newest event's time), as they do from a full sync's start, so a quiet site's polls do
        not fetch the last burst of events again every time. In memory only: after a restart
        the stored cursor asks a little more, once."""

    # --- full --------------------------------------------------------------------------------
    async def full(self) -> SyncReport:
        started = self._client.last_server_time or self._clock.now()
        entrances_raw = await self._client.list_all(
            "/acs/entrances/list", "acs_entrances", page_size=self._page_size
        )
        started = self._client.last_server_time or started
        raw: dict[str, list[tuple[str, str]]] = {"acs_entrance": [], "space": []}
        issues: list[tuple[str, str, str]] = []
        entrances = self._entrances(entrances_raw, raw, issues)
        spaces_raw = await self._client.list_all(
            "/spaces/list", "spaces", page_size=self._page_size
        )
        for s in spaces_raw:
            if isinstance(s, dict) and isinstance(s.get("space_id"), str):
                raw["space"].append((s["space_id"], raw_without_secrets(s)))
        del entrances_raw, spaces_raw
        entrance_spaces = self._entrance_spaces(entrances)

        # Each page is read into records as it arrives, and its objects dropped: the whole
        # listing is never held as parsed JSON. Grants first, so every method's grant is known.
        # Objects read before (the memo) are not decoded at all, if the memo is of the
        # version the store holds.
        based_on = self._store.cloud.version
        memo_valid = self._memo.valid_at(based_on)
        got = _Collected(
            self._scope,
            entrance_spaces,
            Slicer(),
            self._views.latest if self._views is not None else None,
            self._memo,
        )
        queries = [
            (key, one)
            for key, ids in (
                ("space_id", sorted(self._scope.space_ids | entrance_spaces)),
                ("acs_entrance_id", sorted(self._scope.entrance_ids)),
                ("device_id", sorted(self._scope.device_ids)),
            )
            for one in ids
        ]
        recall = got.recaller(memo_valid, methods=False)
        for key, one in queries:
            async for page in self._client.raw_pages(
                "/access_grants/list", "access_grants", {key: one}, self._page_size, recall
            ):
                await got.grants_texts(page, memo_valid)
        recall = got.recaller(memo_valid, methods=True)  # once every grant has been read
        for key, one in queries:
            async for page in self._client.raw_pages(
                "/access_methods/list", "access_methods", {key: one}, self._page_size, recall
            ):
                await got.methods_texts(page, memo_valid)
        await got.methods_done()
        slicer = got.slicer
        grants, methods = list(got.grants.values()), got.method_records()
        await got.raw_into(raw)
        issues.extend(got.issue_list())
        # The memo's grants are all live rows: with them, the missing are counted, not read.
        gone = await self._store.cloud.live_grants_not_in(
            got.grants, slicer, live_among=got.same[0] if memo_valid else ()
        )
        settle_big(len(grants) + len(methods))
        identities = await self._identities(itertools.chain(grants, gone), raw, slicer)
        now = self._clock.now()
        grants, methods, revised = await _revocations(grants, methods, identities, now, slicer)
        same = Unchanged(based_on, got.same[0] - revised[0], got.same[1] - revised[1])
        gone_reasons = {g.grant_id: _gone_reason(g, identities) for g in gone}
        _warn_deleted_identities(gone, identities)
        covered = await self._events_covered_by(started)
        snap = CloudSnapshot(grants, methods, entrances, raw, issues, gone_reasons)
        del raw
        known_issues = self._store.cloud.issues()
        # One transaction, off the event loop: the snapshot holds everything up to its start,
        # so events from then on are news.
        try:
            version = await self._store.cloud.apply_snapshot_sliced(
                snap,
                now,
                CloudChanges([], [], {}, {}, {}, [], covered, to_db(started)),
                same=same if memo_valid else None,
            )
        except StaleSnapshot:
            # The store changed under the memo: read everything again, in full.
            log.info("cloud data changed during the full sync; reading it again in full")
            self._memo.clear()
            return await self.full()
        got.memo_after(version, revised)
        del got
        await _release(snap.raw, slicer)  # written: the largest part is not needed any more
        # Their heap pages go back to the system before the view is indexed: the view's small
        # objects come from CPython's own arenas, which cannot reuse what glibc's heap keeps
        # free, so without this the view is built on top of them (measured, 50,000 grants on
        # 20 locks: the process peaked at 209 MiB when the view was built, 166 MiB with this).
        await asyncio.to_thread(heap.trim)
        if self._views is not None:
            await self._views.adopt(version, grants, methods, entrances)
        # The pages, the staged rows and the previous view are freed: give their heap pages
        # back to the system before the locks' pushes allocate again (off the loop).
        await asyncio.to_thread(heap.trim)
        self._on_change()
        log_new_issues(known_issues, issues_in(self._store.cloud, issues))
        log.info(
            "full sync: %d grants, %d access methods, %d issues",
            len(grants),
            len(methods),
            len(issues),
        )
        return SyncReport("full", len(grants), len(methods), 0, issues)

    async def _events_covered_by(self, started: datetime) -> list[tuple[str, str]]:
        """Events the snapshot already reflects, so the next poll does not fetch them again.

        ``started`` comes from the server's ``Date`` header, which is the server time rounded
        down to the second: an event stamped at or before it happened before the snapshot.
        """
        data = await self._client.call(
            "/events/list", {"since": (started - EVENT_OVERLAP).isoformat(), "limit": EVENTS_PAGE}
        )
        events = data.get("events")
        covered = []
        for e in events if isinstance(events, list) else []:
            when = _event_time(e) if isinstance(e, dict) else None
            if when is not None and when <= started and isinstance(e.get("event_id"), str):
                covered.append((e["event_id"], to_db(when) or ""))
        return covered

    def _entrances(
        self,
        objs: list[Any],
        raw: dict[str, list[tuple[str, str]]],
        issues: list[tuple[str, str, str]],
    ) -> list[Entrance]:
        out = []
        for obj in objs:
            try:
                e = CloudEntrance.model_validate(obj)
            except ValueError:
                issues.append(("acs_entrance", _id_of(obj, "acs_entrance_id"), "invalid entrance"))
                continue
            out.append(Entrance(e.acs_entrance_id, frozenset(e.space_ids)))
            raw["acs_entrance"].append((e.acs_entrance_id, raw_without_secrets(obj)))
        return out

    def _entrance_spaces(self, entrances: Iterable[Entrance]) -> frozenset[str]:
        return frozenset(
            s for e in entrances if e.entrance_id in self._scope.entrance_ids for s in e.space_ids
        )

    async def _parse(
        self,
        grant_objs: dict[str, Any],
        method_objs: dict[str, Any],
        raw: dict[str, list[tuple[str, str]]],
        issues: list[tuple[str, str, str]],
        entrance_spaces: frozenset[str],
        slicer: Slicer,
    ) -> tuple[list[Grant], list[AccessMethod]]:
        """Parse and check every object, giving the event loop back between slices."""
        got = _Collected(self._scope, entrance_spaces, slicer)
        await got.grants_page(list(grant_objs.values()))
        await got.methods_page(list(method_objs.values()))
        await got.raw_into(raw)
        issues.extend(got.issue_list())
        return list(got.grants.values()), list(got.methods.values())

    async def _identities(
        self, grants: Iterable[Grant], raw: dict[str, list[tuple[str, str]]], slicer: Slicer
    ) -> dict[str, tuple[SeamNote, ...]]:
        """The user identities of ``grants`` that the cloud still lists, with Seam's notes on
        each (an identity missing from the answer was deleted)."""
        ids = sorted(set(filter(None, map(_USER, grants))))
        await slicer.tick()
        raw.setdefault("user_identity", [])
        found: dict[str, tuple[SeamNote, ...]] = {}
        for i in range(0, len(ids), CHUNK):
            for u in await self._client.list_all(
                "/user_identities/list",
                "user_identities",
                {"user_identity_ids": ids[i : i + CHUNK]},
                self._page_size,
            ):
                uid = _id_of(u, "user_identity_id")
                raw["user_identity"].append((uid, raw_without_secrets(u)))
                found[uid] = _identity_notes(u)
        for uid in ids:
            if uid in found:
                continue
            # Missing from the list: make sure before revoking anything. Only a 404 says
            # the identity is gone; a list that left it out by mistake costs one request.
            try:
                data = await self._client.call("/user_identities/get", {"user_identity_id": uid})
            except CloudNotFoundError:
                continue
            user = data.get("user_identity")
            if isinstance(user, dict):
                raw["user_identity"].append((uid, raw_without_secrets(user)))
                found[uid] = _identity_notes(user)
        return found

    # --- incremental -------------------------------------------------------------------------
    async def incremental(self) -> SyncReport:
        """Fetch what the cloud's events say changed; returns how much was applied."""
        cursor_text = self._store.meta.get("event_cursor")
        cursor = from_db(cursor_text) if cursor_text else None
        if cursor is None:
            return await self.full()
        since = max(cursor, self._heard_until) if self._heard_until is not None else cursor
        dated = self._client.last_server_time
        data = await self._client.call(
            "/events/list", {"since": (since - EVENT_OVERLAP).isoformat(), "limit": EVENTS_PAGE}
        )
        # (this answer's Date: a new reading, or none if the answer had no Date header)
        answered = self._client.last_server_time
        heard = answered if answered is not dated else None
        events = data.get("events")
        if not isinstance(events, list):
            raise CloudError("/events/list: 'events' missing or not a list")
        if len(events) >= EVENTS_PAGE:
            # Events after this page would stay unread while the same known ones fill it.
            log.info("%d cloud events since the cursor, a full page: full sync", len(events))
            return await self.full()
        named = [e for e in events if isinstance(e, dict) and isinstance(e.get("event_id"), str)]
        known = self._store.cloud.seen_among([e["event_id"] for e in named])
        fresh = [e for e in named if e["event_id"] not in known]
        if not fresh:
            self._heard(heard)
            return SyncReport("incremental")
        grant_ids: set[str] = set()
        full_needed = False
        newest = cursor
        for e in fresh:
            etype = str(e.get("event_type", ""))
            when = _event_time(e) or newest
            newest = max(newest, when)
            if etype.startswith("access_grant.") and isinstance(e.get("access_grant_id"), str):
                grant_ids.add(e["access_grant_id"])
            elif etype.startswith("access_method."):
                grant_ids.update(g for g in e.get("access_grant_ids") or [] if isinstance(g, str))
            elif etype.startswith(("acs_entrance.", "space.", "device.")):
                full_needed = True
        seen = [(e["event_id"], to_db(_event_time(e) or newest) or "") for e in fresh]
        if full_needed:
            report = await self.full()
            self._apply(CloudChanges([], [], {}, {}, {}, [], seen, to_db(newest)))
            return report
        changes = await self._changes(sorted(grant_ids), seen, to_db(newest))
        known_issues = self._store.cloud.issues()
        self._apply(changes)
        self._on_change()
        log_new_issues(known_issues, issues_in(self._store.cloud, changes.issues))
        self._heard(heard)
        log.info(
            "incremental sync: %d grants changed, %d deleted",
            len(changes.grants),
            len(changes.deleted_grant_ids),
        )
        return SyncReport(
            "incremental",
            len(changes.grants),
            len(changes.methods),
            len(changes.deleted_grant_ids) + len(changes.deleted_method_ids),
            changes.issues,
        )

    def _heard(self, answered: datetime | None) -> None:
        """Every event up to ``answered`` (a poll's ``Date``) is read and applied."""
        if answered is not None and (self._heard_until is None or answered > self._heard_until):
            self._heard_until = answered

    def _apply(self, changes: CloudChanges) -> None:
        """Commit an incremental sync's changes; the memo forgets what they rewrote."""
        before = self._store.cloud.version
        self._store.cloud.apply_changes(changes, self._clock.now())
        self._memo.forget(
            before,
            self._store.cloud.version,
            itertools.chain((g.grant_id for g in changes.grants), changes.deleted_grant_ids),
            itertools.chain((m.method_id for m in changes.methods), changes.deleted_method_ids),
        )

    async def _changes(
        self, grant_ids: list[str], seen: list[tuple[str, str]], cursor: str | None
    ) -> CloudChanges:
        grant_objs: dict[str, Any] = {}
        for i in range(0, len(grant_ids), CHUNK):
            for g in await self._client.list_all(
                "/access_grants/list",
                "access_grants",
                {"access_grant_ids": grant_ids[i : i + CHUNK]},
                self._page_size,
            ):
                grant_objs[_id_of(g, "access_grant_id")] = g
        method_objs: dict[str, Any] = {}
        for gid in grant_objs:
            for m in await self._client.list_all(
                "/access_methods/list", "access_methods", {"access_grant_id": gid}, self._page_size
            ):
                method_objs[_id_of(m, "access_method_id")] = m
        raw: dict[str, list[tuple[str, str]]] = {}
        issues: list[tuple[str, str, str]] = []
        entrance_spaces = self._entrance_spaces(self._store.cloud.entrances())
        slicer = Slicer()
        grants, methods = await self._parse(
            grant_objs, method_objs, raw, issues, entrance_spaces, slicer
        )
        kept = {g.grant_id for g in grants}
        stored = (self._store.cloud.grant(gid) for gid in grant_ids if gid not in kept)
        gone = [g for g in stored if g is not None]
        identities = await self._identities(itertools.chain(grants, gone), raw, slicer)
        grants, methods, _ = await _revocations(
            grants, methods, identities, self._clock.now(), slicer
        )
        deleted_grants = {gid: GONE_FROM_CLOUD for gid in grant_ids if gid not in kept}
        deleted_grants.update({g.grant_id: _gone_reason(g, identities) for g in gone})
        _warn_deleted_identities(gone, identities)
        live_methods = {m.method_id for m in methods}
        deleted_methods = {
            m.method_id: GONE_FROM_CLOUD
            for gid in kept
            for m in self._store.cloud.methods_of_grant(gid)
            if m.method_id not in live_methods and m.revoked_at is None
        }
        return CloudChanges(
            grants, methods, deleted_grants, deleted_methods, raw, issues, seen, cursor
        )


class _Collected:
    """What a sync has read so far: records by id (a later listing of the same object wins),
    their raw objects with the secrets removed, and the objects that could not be read.
    The objects it is handed are its own: their secret fields are deleted in place
    (:func:`~gateway.cloud.models.scrubbed`).

    A full sync hands it each page's objects as JSON text (:meth:`grants_texts`,
    :meth:`methods_texts`): an object whose text the :class:`ObjectMemo` knows (the store
    holds its record, unchanged) is taken as it was, without decoding, checking or scrubbing
    it again, and is marked :attr:`same` so that it is not written again either."""

    SETTLE_EVERY = 5_000
    """Objects read between two :func:`settle` calls (what was read lives until written)."""

    def __init__(
        self,
        scope: Scope,
        entrance_spaces: frozenset[str],
        slicer: Slicer,
        known: CloudView | None = None,
        memo: ObjectMemo | None = None,
    ) -> None:
        self.scope = scope
        self.known = known
        """The view of an earlier version: a record equal to one of its own is replaced by
        that one, so an unchanged site's resync holds one copy of each, not two."""
        self.memo = memo or ObjectMemo()
        """Objects read before; its entries count only if it describes the stored version."""
        self.spaces = scope.space_ids | entrance_spaces
        """The spaces whose grants are ours."""
        self.slicer = slicer
        self.grants: dict[str, Grant] = {}
        self.methods: dict[str, AccessMethod] = {}
        self.raw: dict[str, dict[str, str]] = {"access_grant": {}, "access_method": {}}
        self.issues: dict[tuple[str, str], str] = {}
        self.same: tuple[set[str], set[str]] = (set(), set())
        """Ids of the grants and methods taken from the memo: their rows are what the store
        holds (until a revocation changes the record)."""
        self.read: tuple[dict[str, GrantRead], dict[str, MethodRead]] = ({}, {})
        """By id: each object read without a problem, with its digest (the next memo, once
        the records that went into the store unchanged are known)."""
        self._owner: dict[str, str] = {}
        """Access method id -> the grant that lists it (grants are read before methods)."""
        self._listed: dict[str, tuple[str, ...]] = {}
        """Grant id -> its ``access_method_ids``."""
        self.pages: dict[bytes, PageRead] = {}
        """The pages read whole and cleanly (the next memo's)."""
        self.cursors: dict[bytes, Any] = {}
        """Their ``pagination``."""
        self.decoded = 0
        """Objects read in full (not found in the memo)."""
        self._method_pages: list[bytes | None] = []
        """The digest of each page of methods, in the order read."""
        self._deferred: list[PageRead] | None = []
        """Known pages of methods not taken yet: while every page so far is known, taking
        them waits for :meth:`methods_done` (``None`` once they are taken)."""
        self._whole = False
        """Whether the methods were taken whole from the memo (see :meth:`methods_done`)."""
        self._unsettled = 0

    async def grants_texts(self, page: RawPage, memo_valid: bool) -> None:
        """Read a page of grants: each object's text is digested, those the memo knows are
        taken together (a few C calls for the page: an hourly resync that finds 1% of the
        grants changed finds most of each page known), the others decoded one by one."""
        if self._grants_again(page, memo_valid):
            return
        items = self._items(page, "access_grants")
        # (the memo's grants were ours with its spaces; with other spaces, every one is read)
        usable = memo_valid and self.memo.spaces == self.spaces
        known = self.memo.grants if usable else {}
        digests = list(map(self.memo.digest, items))
        await self.slicer.tick()
        reads: list[GrantRead | None] = list(map(known.get, digests))
        same, read = self.same[0], self.read[0]
        hits: list[GrantRead] = list(filter(None, reads))
        gids = list(map(_GRANT_ID, map(_GRANT, hits)))
        self.grants.update(zip(gids, map(_GRANT, hits), strict=True))
        same.update(gids)
        read.update(zip(gids, hits, strict=True))
        raw = self.raw["access_grant"]
        for gid in raw.keys() & gids if raw else ():
            del raw[gid]  # read in full on an earlier page, as stored on this one
        _own(self._owner, hits, gids)
        await self.slicer.tick()
        clean = True
        for n in [n for n, r in enumerate(reads) if r is None]:
            self.decoded += 1
            grant = self._grant(msgspec.json.decode(items[n]))
            if self.decoded & 15 == 0:
                await self.slicer.tick()
            if grant is None:
                clean = False
                continue
            gid = grant.grant_id
            same.discard(gid)
            if grant.problem is not None:
                read.pop(gid, None)
                clean = False
                continue
            reads[n] = read[gid] = GrantRead(grant, self._listed[gid], digests[n])
        if clean and items:
            rs = list(filter(None, reads))
            entry: PageRead = dict(zip(map(_GRANT_ID, map(_GRANT, rs)), rs, strict=True))
            self._page_read(page, entry)
        self._settle(len(items))

    async def methods_texts(self, page: RawPage, memo_valid: bool) -> None:
        """Read a page of methods (as :meth:`grants_texts`); a page the memo knows whole is
        taken at :meth:`methods_done`, or when a page that is not known comes."""
        if self._methods_again(page, memo_valid):
            return
        items = self._items(page, "access_methods")
        self._method_pages.append(page.digest)
        if items:  # (an empty page adds nothing: it leaves the known ones waiting)
            await self._take_deferred()
        known = self.memo.methods if memo_valid else {}
        digest, owner_of = self.memo.digest, self._owner
        same, read, raw = self.same[1], self.read[1], self.raw["access_method"]
        entry: PageRead = {}
        clean = True
        for n, text in enumerate(items):
            if not n & 15:
                await self.slicer.tick()
            d = digest(text)
            hit = known.get(d)
            if hit is not None and owner_of.get(hit.method.method_id) == hit.owner:
                method = hit.method
                mid = method.method_id
                self.methods[mid] = method
                same.add(mid)
                raw.pop(mid, None)
            else:
                self.decoded += 1
                mid, got = self._method(msgspec.json.decode(text))
                same.discard(mid)
                if got is None or got.problem is not None or got.grant_id is None:
                    read.pop(mid, None)
                    clean = False
                    continue
                method = got
                hit = MethodRead(method, got.grant_id, d)
            read[mid] = hit
            if clean:
                entry[mid] = hit
        if clean and items:
            self._page_read(page, entry)
        self._settle(len(items))

    def _items(self, page: RawPage, items_key: str) -> list[msgspec.Raw]:
        """The page's items; a page recalled whole was not split (it is, if need be)."""
        return split_page("", items_key, page.body)[0] if page.known else page.items

    def _page_read(self, page: RawPage, entry: PageRead) -> None:
        """A page read cleanly, object by object: the next memo's."""
        key = page.digest if page.digest is not None else self.memo.page_digest(page.body)
        self.pages[key] = entry
        self.cursors[key] = page.pagination

    def recaller(self, memo_valid: bool, *, methods: bool) -> Recall:
        """What :meth:`CloudClient.raw_pages` asks about each page's bytes: their digest,
        and whether the memo knows the page whole (then it is neither split nor read: the
        same bytes hold the same items and pagination). A page of methods is known only if
        every grant read in this sync still lists its methods as then, so this is asked
        once all grants are read."""
        memo = self.memo
        usable = memo_valid and bool(memo.pages) and memo.spaces == self.spaces

        def recall(body: bytes) -> tuple[bytes, bool, Any]:
            key = memo.page_digest(body)
            if usable:
                entry = memo.pages.get(key)
                if (
                    entry is not None
                    and key in memo.cursors
                    and (not methods or self._owners_hold(entry))
                ):
                    return key, True, memo.cursors[key]
            return key, False, None

        return recall

    def _owners_hold(self, entry: PageRead) -> bool:
        """Whether every method of ``entry`` is listed by the grant it was read under."""
        return all(map(eq, map(self._owner.get, entry), map(_OWNER, entry.values())))

    def _known_page(self, page: RawPage, memo_valid: bool) -> tuple[bytes, PageRead] | None:
        """The memo's entry of a page whose bytes it knows whole (every object on it read
        cleanly before, and still ours then)."""
        if page.digest is not None:  # the recall said
            entry = self.memo.pages.get(page.digest) if page.known else None
            return None if entry is None else (page.digest, entry)
        if not memo_valid or not self.memo.pages or self.memo.spaces != self.spaces:
            return None
        key = self.memo.page_digest(page.body)
        entry = self.memo.pages.get(key)
        return None if entry is None else (key, entry)

    def _grants_again(self, page: RawPage, memo_valid: bool) -> bool:
        """Take a grants page the memo knows whole; ``False`` if it does not know it."""
        known = self._known_page(page, memo_valid)
        if known is None:
            return False
        key, entry = known
        self.grants.update(zip(entry, map(_GRANT, entry.values()), strict=True))
        _own(self._owner, entry.values(), entry)
        self._taken(page, key, entry, self.same[0], self.read[0], self.raw["access_grant"])
        return True

    def _methods_again(self, page: RawPage, memo_valid: bool) -> bool:
        """Take a methods page the memo knows whole, if every grant still lists its methods;
        ``False`` if not (then it is read object by object)."""
        known = self._known_page(page, memo_valid)
        if known is None:
            return False
        key, entry = known
        if not page.known and not self._owners_hold(entry):  # (a recall checked them)
            return False
        self._method_pages.append(key)
        if self._deferred is not None:
            self._deferred.append(entry)
            self.pages[key] = entry
            self.cursors[key] = page.pagination
            return True
        self._method_entry(entry)
        self._taken(page, key, entry, self.same[1], self.read[1], self.raw["access_method"])
        return True

    def method_records(self) -> list[AccessMethod]:
        """The records of the methods read, in the order first listed (a later listing of
        the same method winning)."""
        if self._whole:  # (:attr:`methods` is left empty)
            return list(map(_METHOD, self.read[1].values()))
        return list(self.methods.values())

    def _method_entry(self, entry: PageRead) -> None:
        self.methods.update(zip(entry, map(_METHOD, entry.values()), strict=True))

    async def _take_deferred(self) -> None:
        """Take the known pages of methods that wait, page by page, in the order read (the
        loop given back between pages, as when each was taken as it came)."""
        deferred, self._deferred = self._deferred, None
        same, read, raw = self.same[1], self.read[1], self.raw["access_method"]
        for entry in deferred or ():
            await self.slicer.tick()
            self._method_entry(entry)
            same.update(entry)
            read.update(entry)
            for oid in raw.keys() & entry.keys() if raw else ():
                del raw[oid]

    async def methods_done(self) -> None:
        """Every page of methods is read. If each was known, and they are the pages the last
        sync read, in the same order, what taking them page by page gives is what that sync
        read from them (the memo's :attr:`~ObjectMemo.methods_by_id`): that is taken whole,
        without copying 30,000 entries page by page (:attr:`methods` stays empty: see
        :meth:`method_records`); else the pages waiting are taken."""
        deferred = self._deferred
        sequence = tuple(self._method_pages)
        if (
            deferred
            and None not in sequence
            and sequence == self.memo.method_pages
            and not self.methods
            and not self.read[1]
            and not self.same[1]
        ):
            by_id = self.memo.methods_by_id
            self._deferred = None
            self.same = (self.same[0], set(by_id))
            self.read = (self.read[0], by_id)
            self._whole = True
            return
        await self._take_deferred()

    def _taken(
        self,
        page: RawPage,
        key: bytes,
        entry: PageRead,
        same: set[str],
        read: dict[str, Any],
        raw: dict[str, str],
    ) -> None:
        same.update(entry)
        read.update(entry)
        for oid in raw.keys() & entry.keys() if raw else ():
            del raw[oid]
        self.pages[key] = entry
        self.cursors[key] = page.pagination

    async def grants_page(self, page: list[Any]) -> None:
        for obj in page:
            await self.slicer.tick()
            self._grant(obj)
        self._settle(len(page))

    async def methods_page(self, page: list[Any]) -> None:
        for obj in page:
            await self.slicer.tick()
            self._method(obj)
        self._settle(len(page))

    def _grant(self, obj: Any) -> Grant | None:
        """Read one grant object; returns its record if it is one of ours."""
        grant, problem = parse_grant(obj)
        if problem:
            self.issues[("access_grant", _id_of(obj, "access_grant_id"))] = problem
        if grant is None or not self.scope.covers(grant, self.spaces):
            return None
        if self.known is not None:
            old = self.known.grants.get(grant.grant_id)
            if old == grant:
                grant = old
        gid = grant.grant_id
        self.grants[gid] = grant
        self.raw["access_grant"][gid] = scrubbed(obj)
        ids = obj.get("access_method_ids") if isinstance(obj, dict) else None
        listed = tuple(mid for mid in ids if isinstance(mid, str)) if isinstance(ids, list) else ()
        for mid in listed:
            self._owner[mid] = gid
        self._listed[gid] = listed
        return grant

    def _method(self, obj: Any) -> tuple[str, AccessMethod | None]:
        """Read one access method object; returns its id (``?`` if it has none) and its
        record if it is one of ours."""
        mid = _id_of(obj, "access_method_id")
        method, problem = parse_method(obj, self._owner.get(mid))
        if problem:
            self.issues[("access_method", mid)] = problem
        if method is None or method.grant_id is None:
            return mid, None  # unreadable, or a method of a grant outside our scope
        if self.known is not None:
            for old_m in self.known.by_grant.get(method.grant_id, ()):
                if old_m.method_id == method.method_id:
                    if old_m == method:
                        method = old_m
                    break
        self.methods[method.method_id] = method
        self.raw["access_method"][method.method_id] = scrubbed(obj)
        return mid, method

    def memo_after(self, version: int, revised: tuple[set[str], set[str]]) -> None:
        """Make the memo that of what was committed at ``version``: the objects read without
        a problem whose records went into the store as read (``revised``: ids of grants and
        methods the sync revoked), and the pages made only of such objects."""
        memo = self.memo
        if (
            not self.decoded
            and not revised[0]
            and not revised[1]
            and memo.spaces == self.spaces
            and len(self.read[0]) == len(memo.grants)
            and len(self.read[1]) == memo.method_count()
        ):
            # Every object read came from the memo, and as many as it holds: its entries are
            # exactly the ones below would be (an hourly resync of an unchanged site).
            memo.replace(
                version,
                memo.grants,
                None,  # (made from the methods by id if asked: the same as memo.methods)
                self.pages,
                self.spaces,
                self.cursors,
                tuple(self._method_pages),
                self.read[1],
            )
            return
        # (the same as {r.digest: r for r in ...values()}, built in C: 40,000 entries)
        grants = _by_digest(self.read[0], revised[0])
        pages = self.pages
        if revised[0] or revised[1]:
            pages = {
                k: p
                for k, p in pages.items()
                if p.keys().isdisjoint(revised[0]) and p.keys().isdisjoint(revised[1])
            }
        cursors = self.cursors
        if pages is not self.pages:
            cursors = {k: cursors[k] for k in pages}
        if revised[1]:
            methods = _by_digest(self.read[1], revised[1])
            self.memo.replace(version, grants, methods, pages, self.spaces, cursors)
        else:  # (its methods by digest made from those by id if asked)
            self.memo.replace(
                version,
                grants,
                None,
                pages,
                self.spaces,
                cursors,
                tuple(self._method_pages),
                self.read[1],
            )

    async def raw_into(self, raw: dict[str, list[tuple[str, str]]]) -> None:
        for kind, items in self.raw.items():
            into = raw.setdefault(kind, [])
            for item in items.items():
                into.append(item)
                await self.slicer.tick()
        self.raw = {}

    def issue_list(self) -> list[tuple[str, str, str]]:
        return [(kind, oid, problem) for (kind, oid), problem in self.issues.items()]

    def _settle(self, read: int) -> None:
        self._unsettled += read
        if self._unsettled >= self.SETTLE_EVERY:
            self._unsettled = 0
            settle()


def _own(owner: dict[str, str], reads: Iterable[GrantRead], gids: Iterable[str]) -> None:
    """``owner[mid] = gid`` for each method id each grant read lists, in order (in C passes:
    30,000 methods on a resync)."""
    listed = list(map(_METHOD_IDS, reads))
    owners = itertools.chain.from_iterable(map(itertools.repeat, gids, map(len, listed)))
    owner.update(zip(itertools.chain.from_iterable(listed), owners, strict=True))


def _by_digest(read: dict[str, Any], revised: set[str]) -> dict[bytes, Any]:
    """``read``'s entries not of ``revised`` ids, by their digest."""
    if revised:
        return {r.digest: r for oid, r in read.items() if oid not in revised}
    return dict(zip(map(_DIGEST, read.values()), read.values(), strict=True))


async def _revocations(
    grants: list[Grant],
    methods: list[AccessMethod],
    identities: dict[str, tuple[SeamNote, ...]],
    now: datetime,
    slicer: Slicer,
) -> tuple[list[Grant], list[AccessMethod], tuple[set[str], set[str]]]:
    """Grants and methods as they go into the store, revoked where Seam says they are going:
    a ``being_deleted`` warning on the grant, the method or the user identity, or a user
    identity the cloud no longer lists (deleted with everything that hangs off it). Also
    returns the ids of the grants and methods revoked here."""
    if _none_revoked(grants, methods, identities):
        return grants, methods, (set(), set())
    out_grants: list[Grant] = []
    reasons: dict[str, str] = {}
    by_identity: dict[str, int] = {}
    per_user: dict[str | None, str | None] = {}
    """User identity -> the verdict on its grants without notes of their own (the same)."""
    for n, g in enumerate(grants):
        if not n & 15:
            await slicer.tick()
        uid = g.user_identity_id
        if g.seam_notes:
            why = _grant_revocation(g, identities)
        elif uid in per_user:
            why = per_user[uid]
        else:
            why = per_user[uid] = _grant_revocation(g, identities)
        if why is not None:
            reasons[g.grant_id] = why
            g = replace(g, revoked_at=now, revoked_reason=why)
            if g.user_identity_id and why.startswith("user identity"):
                by_identity[g.user_identity_id] = by_identity.get(g.user_identity_id, 0) + 1
        out_grants.append(g)
    for uid, count in sorted(by_identity.items()):
        log.warning("user identity %s is deleted in the cloud: revoking its %d grants", uid, count)
    out_methods: list[AccessMethod] = []
    revoked: set[str] = set()
    for n, m in enumerate(methods):
        if not n & 15:
            await slicer.tick()
        why = reasons.get(m.grant_id or "") if reasons else None
        if why is None and m.seam_notes and being_deleted(m.seam_notes):
            why = "access method being deleted in the cloud (Seam warning being_deleted)"
        if why is not None:
            m = replace(m, revoked_at=now, revoked_reason=why)
            revoked.add(m.method_id)
        out_methods.append(m)
    return out_grants, out_methods, (set(reasons), revoked)


def _none_revoked(
    grants: list[Grant], methods: list[AccessMethod], identities: dict[str, tuple[SeamNote, ...]]
) -> bool:
    """Whether :func:`_revocations` revokes nothing, found in a few C passes (the usual case):
    no grant has notes of its own, none of their user identities is going, and no method with
    notes is being deleted."""
    if any(map(_NOTES, grants)):
        return False
    one_each = dict(zip(map(_USER, grants), grants, strict=True))  # (the verdict is the user's)
    if any(_grant_revocation(g, identities) is not None for g in one_each.values()):
        return False
    noted = itertools.compress(methods, map(_NOTES, methods))
    return not any(being_deleted(m.seam_notes) for m in noted)


async def _release(raw: dict[str, list[tuple[str, str]]], slicer: Slicer) -> None:
    """Empty ``raw`` a slice at a time: freeing 100,000 objects at once holds the loop too."""
    for items in raw.values():
        while items:
            del items[-1000:]
            await slicer.tick()
    raw.clear()


def _grant_revocation(g: Grant, identities: dict[str, tuple[SeamNote, ...]]) -> str | None:
    """Why the grant must go although the cloud still lists it; the identity is named first,
    as the cause of its grants' own ``being_deleted``."""
    uid = g.user_identity_id
    if uid is not None and uid not in identities:
        return f"user identity {uid} was deleted in the cloud"
    if uid is not None and being_deleted(identities[uid]):
        return f"user identity {uid} is being deleted in the cloud (Seam warning being_deleted)"
    if being_deleted(g.seam_notes):
        return "access grant being deleted in the cloud (Seam warning being_deleted)"
    return None


def _identity_notes(user: Any) -> tuple[SeamNote, ...]:
    if not isinstance(user, dict):
        return ()
    errors, warnings = user.get("errors"), user.get("warnings")
    return seam_notes(
        errors if isinstance(errors, list) else [],
        warnings if isinstance(warnings, list) else [],
        [],
    )


def _warn_deleted_identities(
    gone: list[Grant], identities: dict[str, tuple[SeamNote, ...]]
) -> None:
    counts: dict[str, int] = {}
    for g in gone:
        if g.user_identity_id is not None and g.user_identity_id not in identities:
            counts[g.user_identity_id] = counts.get(g.user_identity_id, 0) + 1
    for uid, count in sorted(counts.items()):
        log.warning(
            "user identity %s was deleted in the cloud with %d access grants: revoking them",
            uid,
            count,
        )


def _gone_reason(g: Grant, identities: dict[str, tuple[SeamNote, ...]]) -> str:
    """Why a grant the cloud no longer lists is gone: with its user identity, or alone."""
    uid = g.user_identity_id
    if uid is not None and uid not in identities:
        return f"user identity {uid} was deleted in the cloud, with its access grants"
    return GONE_FROM_CLOUD


def _id_of(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else "?"


def _event_time(e: dict[str, Any]) -> datetime | None:
    for key in ("created_at", "occurred_at"):
        value = e.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None
