"""Secrets come from files or systemd credentials, never from the command line or the config.

A :class:`SecretRef` (in the gateway's config or in a driver's options) names either a file
(``file = "/etc/lockgate/api-key"``) or a systemd credential (``credential = "seam-api-key"``,
read from ``$CREDENTIALS_DIRECTORY`` as set up by ``LoadCredential=``).
Files holding secrets must not be readable by group or others.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator


class SecretError(Exception):
    """A secret could not be read safely; the message names the source, never the value.

    ``code``: ``unreadable`` (missing, or not ours to read), ``exposed`` (group or others may
    read it), ``no_credentials`` (a systemd credential outside systemd)."""

    def __init__(self, message: str, code: str = "unreadable") -> None:
        super().__init__(message)
        self.code = code


class SecretRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: Path | None = None
    credential: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.file is None) == (self.credential is None):
            raise ValueError("give exactly one of 'file' or 'credential'")
        if self.credential is not None and ("/" in self.credential or not self.credential):
            raise ValueError("a credential name is a plain name, without '/'")
        return self

    def path(self) -> Path:
        if self.file is not None:
            return self.file
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise SecretError(
                f"credential {self.credential!r} asked for, but $CREDENTIALS_DIRECTORY is not "
                "set (run under systemd with LoadCredential=, or use file = ...)",
                "no_credentials",
            )
        assert self.credential is not None
        return Path(directory) / self.credential

    def read_bytes(self) -> bytes:
        path = self.path()
        try:
            st = path.stat()
        except OSError as err:
            raise SecretError(f"cannot read secret {path}: {err.strerror}") from err
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"secret {path} is readable by group or others "
                f"(mode {stat.filemode(st.st_mode)}); chmod 600 it",
                "exposed",
            )
        return path.read_bytes()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8").strip()


def create_secret_file(path: Path, value: bytes) -> None:
    """Write a new secret file with mode 0600 (fails if it exists: never overwrite a key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
