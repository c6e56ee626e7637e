"""The gateway's own view of cloud objects: what planning and deciding need, nothing more.

Cloud objects arrive in Seam's shapes (:mod:`gateway.cloud.models`); the sync turns them into
these frozen records. ``secret`` fields hold PIN digits, card numbers or mobile-key material and
are left out of ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from drivers.base import CredentialKind, TimeWindow


@dataclass(frozen=True, slots=True)
class SeamNote:
    """One entry of a Seam object's ``errors``, ``warnings`` or ``pending_mutations``."""

    kind: str
    """``error``, ``warning`` or ``pending_mutation``."""
    code: str
    """Seam's ``error_code`` / ``warning_code`` / ``mutation_code`` (``failed_to_issue``,
    ``being_deleted``, ``revoking_access`` ...)."""
    message: str = ""

    def text(self) -> str:
        return f"Seam {self.kind} {self.code}" + (f": {self.message}" if self.message else "")


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str
    starts_at: datetime | None
    ends_at: datetime | None
    space_ids: frozenset[str] = frozenset()
    entrance_ids: frozenset[str] = frozenset()
    device_ids: frozenset[str] = frozenset()
    user_identity_id: str | None = None
    display_name: str = ""
    problem: str | None = None
    """Why this grant cannot be honoured (e.g. ``ends_at`` before ``starts_at``), if so."""
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    """Why the gateway revoked it (deleted in the cloud, its user identity deleted ...)."""
    seam_notes: tuple[SeamNote, ...] = ()
    """Seam's own ``errors``, ``warnings`` and ``pending_mutations`` on the grant."""

    @property
    def window(self) -> TimeWindow:
        return TimeWindow(self.starts_at, self.ends_at)


@dataclass(frozen=True, slots=True)
class AccessMethod:
    method_id: str
    grant_id: str | None
    mode: str
    """Seam's mode: ``code``, ``card``, ``mobile_key``, or ``cloud_key`` (never on a lock)."""
    secret: bytes | None = field(default=None, repr=False)
    problem: str | None = None
    display_name: str = ""
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    issued: bool = True
    """Seam's ``is_issued``: false until Seam has issued the method."""
    seam_notes: tuple[SeamNote, ...] = ()
    """Seam's own ``errors``, ``warnings`` and ``pending_mutations`` on the method."""

    @property
    def kind(self) -> CredentialKind | None:
        return _KIND_OF_MODE.get(self.mode)


_KIND_OF_MODE: dict[str, CredentialKind] = {k.value: k for k in CredentialKind}
"""Seam's modes that are credential kinds (a lookup: the planner asks once per method)."""


@dataclass(frozen=True, slots=True)
class Entrance:
    entrance_id: str
    space_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class CloudSnapshot:
    """Everything the gateway needs from the cloud, fetched whole before it replaces anything."""

    grants: list[Grant]
    methods: list[AccessMethod]
    entrances: list[Entrance]
    raw: dict[str, list[tuple[str, str]]]
    """Per object type, ``(id, json)`` with secrets removed: unknown fields are kept here."""
    issues: list[tuple[str, str, str]]
    """``(object type, id or '?', problem)`` for objects that could not be read."""
    gone_reasons: dict[str, str] = field(default_factory=dict)
    """Why grants the snapshot no longer holds are gone, where more is known than "no longer
    listed" (their user identity was deleted)."""


@dataclass(frozen=True, slots=True)
class CloudChanges:
    """What changed since the last event seen: upserts, deletions, and the new cursor."""

    grants: list[Grant]
    methods: list[AccessMethod]
    deleted_grant_ids: dict[str, str]
    """Grants gone from the cloud, with why (the reason the validator and status give)."""
    deleted_method_ids: dict[str, str]
    raw: dict[str, list[tuple[str, str]]]
    issues: list[tuple[str, str, str]]
    seen_event_ids: list[tuple[str, str]]
    """``(event_id, occurred_at)`` of the events these changes answer."""
    cursor: str | None
