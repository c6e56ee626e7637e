"""Small builders for the gateway's records, so tests say only what matters to them."""

from __future__ import annotations

from datetime import datetime, timedelta

from drivers.base import Capabilities, CredentialKind
from gateway.models import AccessMethod, Grant


def grant(
    gid: str,
    *,
    start: datetime | None,
    hours: float | None = 2,
    spaces: tuple[str, ...] = ("space-a",),
    entrances: tuple[str, ...] = (),
    problem: str | None = None,
    user: str | None = "user-1",
) -> Grant:
    end = None if hours is None or start is None else start + timedelta(hours=hours)
    return Grant(
        grant_id=gid,
        starts_at=start,
        ends_at=end,
        space_ids=frozenset(spaces),
        entrance_ids=frozenset(entrances),
        user_identity_id=user,
        problem=problem,
    )


def code(mid: str, gid: str, pin: str) -> AccessMethod:
    return AccessMethod(mid, gid, "code", secret=pin.encode())


def card(mid: str, gid: str, number: str) -> AccessMethod:
    return AccessMethod(mid, gid, "card", secret=number.encode())


def caps(
    *, slots: int = 10, windows: bool = False, max_batch: int = 5, length: tuple[int, int] = (4, 8)
) -> Capabilities:
    return Capabilities(
        slots=slots,
        max_batch=max_batch,
        kinds=frozenset({CredentialKind.CODE, CredentialKind.CARD}),
        enforces_time_windows=windows,
        code_min_length=length[0],
        code_max_length=length[1],
    )
