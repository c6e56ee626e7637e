"""Lockgate credentials as Nuki keypad codes, and back.

A keypad entry carries no field of ours but its 20-byte name, so the name holds what the
gateway must find again after a crash, a lost answer or a restart: ``LG`` + the credential's
8-byte content tag + a 5-byte hash of its id, both base64url (20 characters; the Nuki app shows
it as the code's name). The lock is the record of what it holds; the key store keeps only the
directory from id hash to credential id (written *before* the code is added, so a code whose
Add answer was lost is recognised, never added twice) and from code id to credential id (for
the log: a keypad entry names the code id).

Windows: the lock keeps from/until dates to the second (UTC); a window's start is rounded up
and its end down, so the lock never opens outside the grant.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers.base import Credential, CredentialKind, KeyStore, StoredCredential, TimeWindow
from drivers.nuki.messages import CodeWindow, KeypadEntry

PREFIX = "LG"
FOREIGN = "nuki-code:"
"""Credential id under which a code the gateway did not put is reported (so it is removed)."""
_DIRECTORY_LIMIT = 2000


def id_hash(credential_id: str) -> str:
    digest = hashlib.sha256(credential_id.encode()).digest()[:5]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def code_name(credential: Credential) -> str:
    if len(credential.tag) != 8:
        raise ValueError("a content tag is 8 bytes")
    return PREFIX + _b64(credential.tag) + id_hash(credential.credential_id)


@dataclass(frozen=True, slots=True)
class NameParts:
    tag: bytes
    id_hash: str


def parse_name(name: str) -> NameParts | None:
    if len(name) != 20 or not name.startswith(PREFIX):
        return None
    try:
        tag = base64.urlsafe_b64decode(name[2:13] + "=")
    except ValueError:
        return None
    return NameParts(tag, name[13:]) if len(tag) == 8 else None


def code_digits(credential: Credential) -> int:
    return int(credential.secret.decode("ascii"))


def _ceil_second(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + timedelta(seconds=1)


def to_code_window(window: TimeWindow | None) -> CodeWindow:
    if window is None or (window.starts_at is None and window.ends_at is None):
        return CodeWindow()
    starts = _ceil_second(window.starts_at) if window.starts_at else None
    ends = window.ends_at.replace(microsecond=0) if window.ends_at else None
    return CodeWindow(starts_at=starts, ends_at=ends)


def to_time_window(window: CodeWindow) -> TimeWindow | None:
    if not window.time_limited:
        return None
    return TimeWindow(window.starts_at, window.ends_at)


class Directory:
    """id hash -> credential id and code id -> credential id, in the key store (encrypted)."""

    def __init__(self, keystore: KeyStore, lock_id: str) -> None:
        self._keystore = keystore
        self._name = f"nuki/{lock_id}/directory"
        raw = keystore.get(self._name)
        data = json.loads(raw) if raw else {}
        self.by_hash: dict[str, str] = dict(data.get("hash", {}))
        self.by_code: dict[str, str] = dict(data.get("code", {}))

    def _save(self) -> None:
        if len(self.by_code) > _DIRECTORY_LIMIT:
            for key in sorted(self.by_code, key=int)[: len(self.by_code) - _DIRECTORY_LIMIT]:
                del self.by_code[key]
        data = {"hash": self.by_hash, "code": self.by_code}
        self._keystore.put(self._name, json.dumps(data, sort_keys=True).encode())

    def intend(self, credential_id: str) -> None:
        """Before adding: the code about to appear on the lock is this credential's."""
        key = id_hash(credential_id)
        if self.by_hash.get(key) != credential_id:
            self.by_hash[key] = credential_id
            self._save()

    def placed(self, credential_id: str, code_id: int) -> None:
        if self.by_code.get(str(code_id)) != credential_id:
            self.by_code[str(code_id)] = credential_id
            self._save()

    def forget(self, credential_id: str) -> None:
        self.by_hash.pop(id_hash(credential_id), None)
        self._save()

    def credential_of(self, entry: KeypadEntry) -> str | None:
        parts = parse_name(entry.name)
        if parts is None:
            return None
        return self.by_hash.get(parts.id_hash)

    def credential_of_code(self, code_id: int) -> str | None:
        return self.by_code.get(str(code_id))


def stored(entry: KeypadEntry, credential_id: str | None) -> StoredCredential:
    """What the gateway sees of one keypad entry (never the digits)."""
    parts = parse_name(entry.name)
    if credential_id is None or parts is None:
        return StoredCredential(f"{FOREIGN}{entry.code_id}", CredentialKind.CODE, b"")
    return StoredCredential(
        credential_id, CredentialKind.CODE, parts.tag, to_time_window(entry.window)
    )
