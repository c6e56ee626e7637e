"""Logging for operators: one line per event, the lock's id as a field the journal can filter.

Under systemd (stderr is the journal stream named by ``JOURNAL_STREAM``) records go to journald
through its native protocol (:mod:`gateway.journal`), so ``LOCK=<id>`` is a real journal field:
``journalctl -u lockgate LOCK=front-door`` finds one door's story. If the journal socket cannot
take a record, it is written to stderr with a ``<N>`` priority prefix instead.

Elsewhere (a terminal, a test, a container) lines are plain text with a timestamp, and
``LOCK=<id>`` is appended to every line about a lock.
"""

from __future__ import annotations

import logging
import sys

from gateway.journal import JOURNAL_SOCKET, JournalHandler, priority, stderr_is_journal


class OperatorFormatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        fmt = (
            "%(name)s: %(message)s"
            if journal
            else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        super().__init__(fmt)
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        lock = getattr(record, "lock", None)
        if lock:
            text += f" LOCK={lock}"
        if self._journal:
            return f"<{priority(record.levelno)}>{text}"
        return text


def build_handler(*, journal: bool) -> logging.Handler:
    """The root handler: journald's native protocol under systemd, plain stderr elsewhere."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(OperatorFormatter(journal))
    if journal and JOURNAL_SOCKET.exists():
        return JournalHandler(fallback=stream)
    return stream


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    root.handlers[:] = [build_handler(journal=stderr_is_journal())]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "bleak", "bumble", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level)
