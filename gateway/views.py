"""One decrypted, indexed view of the cloud data per store version, shared by all locks."""

from __future__ import annotations

from gateway.planner import CloudView
from gateway.store.store import Store


class ViewCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._view: CloudView | None = None

    def current(self) -> CloudView:
        version = self._store.cloud.version
        if self._view is None or self._view.version != version:
            self._view = CloudView(
                self._store.cloud.grants(),
                self._store.cloud.methods(),
                self._store.cloud.entrances(),
                version,
            )
        return self._view
