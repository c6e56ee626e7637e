from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.models import AccessMethod, CloudSnapshot, Entrance, Grant
from gateway.secrets import SecretRef
from gateway.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "lockgate.db", SecretRef(file=tmp_path / "store.key")) as s:
        yield s


def snapshot(
    grants: list[Grant], methods: list[AccessMethod], entrances: list[Entrance] | None = None
) -> CloudSnapshot:
    return CloudSnapshot(grants, methods, entrances or [], {}, [])
