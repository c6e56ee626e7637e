from __future__ import annotations

from gateway.models import AccessMethod, CloudSnapshot, Entrance, Grant


def snapshot(
    grants: list[Grant], methods: list[AccessMethod], entrances: list[Entrance] | None = None
) -> CloudSnapshot:
    return CloudSnapshot(grants, methods, entrances or [], {}, [])
