"""One decrypted, indexed view of the cloud data per store version, shared by all locks.

:meth:`ViewCache.refresh` builds a new version's view in slices that give the event loop back
(50,000 grants take seconds to read, decrypt and index); :meth:`ViewCache.current` answers
from it at once, and builds in one go only if asked before a refresh caught up. A full sync
hands its records over with :meth:`ViewCache.adopt` instead: the view of the version it just
committed is indexed from memory, not read back and decrypted, and made from the last view
where few records changed (:mod:`gateway.view_update`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from operator import attrgetter

from gateway.cooperative import Slicer, settle_big
from gateway.models import AccessMethod, Entrance, Grant
from gateway.planner import CloudView
from gateway.store.store import Store
from gateway.view_update import update_steps

_GRANT_ID = attrgetter("grant_id")
_REVOKED = attrgetter("revoked_at")


class ViewCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._data_version = store.meta.data_version
        self._view: CloudView | None = None
        self._building = asyncio.Lock()

    @property
    def latest(self) -> CloudView | None:
        """The last view built, whatever its version (a sync reuses its records where the
        cloud sends equal ones; never for answers, which :meth:`current` gives)."""
        return self._view

    def current(self) -> CloudView:
        view = self._view
        if view is not None and view.version == self._data_version.current:
            return view  # every decision asks: the data version straight from memory
        version = self._store.cloud.version
        if self._view is None or self._view.version != version:
            # One read transaction: grants, methods and entrances of one version, not the
            # grants of one and the methods of the next.
            read, grants, methods, entrances = self._store.cloud.loaded()
            view = CloudView(grants, methods, entrances, read)
            view.inherit(self._view)
            self._view = view
        return self._view

    async def refresh(self) -> CloudView:
        """The view of the store's current version, built without holding the loop."""
        async with self._building:
            while True:
                version = self._store.cloud.version
                if self._view is not None and self._view.version == version:
                    return self._view
                slicer = Slicer()
                grants, methods, entrances = await self._store.cloud.load_sliced(slicer)
                view = await CloudView.built(grants, methods, entrances, version, slicer)
                view.inherit(self._view)
                size = len(grants) + len(methods)
                del grants, methods
                if self._store.cloud.version == version:  # else it changed meanwhile: again
                    self._view = view
                    settle_big(size)

    async def adopt(
        self,
        version: int,
        grants: Iterable[Grant],
        methods: Iterable[AccessMethod],
        entrances: list[Entrance],
    ) -> None:
        """Index ``version`` from the records just written to the store (every grant and
        method of a full snapshot, secrets in the clear): its live ones are exactly what the
        store holds at that version. Does nothing if the store has moved on since."""
        async with self._building:
            if self._store.cloud.version != version:
                return
            if self._view is not None and self._view.version == version:
                return  # a sync that changed nothing: the view (and its plans) still hold
            slicer = Slicer()
            grants, methods = list(grants), list(methods)
            if any(map(_REVOKED, grants)):
                live = {g.grant_id: g for g in grants if g.revoked_at is None}
            else:
                live = dict(zip(map(_GRANT_ID, grants), grants, strict=True))
            live_methods = methods
            if any(map(_REVOKED, methods)):
                live_methods = [m for m in methods if m.revoked_at is None]
            await slicer.tick()
            view = None
            made: list[CloudView] = []
            if self._view is not None:
                for _ in update_steps(made, self._view, live, live_methods, entrances, version):
                    await slicer.tick()
                view = made[0] if made else None
            if view is None:
                view = await CloudView.built(live, live_methods, entrances, version, slicer)
            view.inherit(self._view)
            if self._store.cloud.version == version:
                self._view = view
                if not made:  # (one made from the last view made few new objects)
                    settle_big(len(view.grants) + len(view.grant_of))
