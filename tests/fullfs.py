"""A really full filesystem for the tests: a small tmpfs, and a file that takes all its space.

Mounting needs root (CAP_SYS_ADMIN): the test suite runs as root here and in CI (the same kind
of machine), so these tests run everywhere the suite runs and are never skipped. A tmpfs gives
the real SQLite a real ENOSPC (``SQLITE_FULL``) from the kernel, which neither a
``max_page_count`` nor a mocked error would.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

CHUNK = 4096


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` for the block (unmounted after, even on failure)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True, capture_output=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in ``directory`` until its filesystem says ENOSPC; returns the file."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * CHUNK)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return path


def shrink_wal(conn: sqlite3.Connection) -> None:
    """Checkpoint and truncate the WAL, so the next commit needs new blocks (a WAL that
    already has room takes small commits on a full disk without growing)."""
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "the WAL could not be truncated"


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` on a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
