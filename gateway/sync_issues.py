"""Sync issues as an operator reads them: which grant or access method, why, and what it means.

The cloud sync records each object it could not use as it stands (``sync_issues`` in the
store: object type, id, reason). :func:`issues_in` turns those rows into :class:`SyncIssue`
values, each with the grant it concerns and one plain sentence, for ``status`` and
``grant_sync_state`` over MQTT; :func:`log_new_issues` writes a WARNING line for each issue a
sync found that the previous one did not (the repeats at DEBUG). The reasons come from the
parsers in :mod:`gateway.cloud.models`, which name fields and rules, never a value: no PIN or
card number reaches a log line or a payload through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.store.cloud_data import CloudData

log = logging.getLogger(__name__)

RawIssue = tuple[str, str, str]
"""``(object_type, object_id, reason)`` as the sync records it."""

FIX = "fix it in the cloud: the next sync picks it up"


@dataclass(frozen=True, slots=True)
class SyncIssue:
    object_type: str
    """``access_grant``, ``access_method`` or ``acs_entrance``."""
    object_id: str
    reason: str
    grant_id: str | None = None
    """The grant concerned (the method's grant for a method), when the store knows it."""

    @property
    def method_id(self) -> str | None:
        return self.object_id if self.object_type == "access_method" else None

    def sentence(self) -> str:
        if self.object_type == "access_method":
            of = f" of grant {self.grant_id}" if self.grant_id else ""
            return (
                f"Access method {self.object_id}{of} cannot go onto any lock: {self.reason}; "
                f"{FIX}."
            )
        if self.object_type == "access_grant":
            return (
                f"Grant {self.object_id} cannot be used as the cloud sent it: {self.reason}; "
                f"its access methods stay off the locks until then; {FIX}."
            )
        if self.object_type == "acs_entrance":
            return (
                f"Entrance {self.object_id} is ignored: {self.reason}; grants given for it "
                f"reach no lock; {FIX}."
            )
        return f"{self.object_type} {self.object_id}: {self.reason}; {FIX}."

    def as_json(self) -> dict[str, str | None]:
        return {
            "object_type": self.object_type,
            "object_id": self.object_id,
            "grant_id": self.grant_id,
            "method_id": self.method_id,
            "reason": self.reason,
            "message": self.sentence(),
        }


def issues_in(cloud: CloudData, raw: Iterable[RawIssue] | None = None) -> list[SyncIssue]:
    """The recorded issues (or ``raw``) with the grant each one concerns."""
    rows = list(cloud.issues() if raw is None else raw)
    out = []
    for object_type, object_id, reason in rows:
        grant_id: str | None = None
        if object_type == "access_grant":
            grant_id = object_id
        elif object_type == "access_method":
            grant_id = cloud.grant_of_method(object_id)
        out.append(SyncIssue(object_type, object_id, reason, grant_id))
    return out


def log_new_issues(before: Iterable[RawIssue], found: Iterable[SyncIssue]) -> None:
    """One WARNING per issue that was not there before this sync, DEBUG for the repeats."""
    known = set(before)
    for issue in found:
        new = (issue.object_type, issue.object_id, issue.reason) not in known
        log.log(logging.WARNING if new else logging.DEBUG, "sync issue: %s", issue.sentence())
