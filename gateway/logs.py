"""Logging for operators: one line per event, the lock's id as a field the journal can filter.

Under systemd (``JOURNAL_STREAM`` set) lines carry a ``<N>`` priority prefix that journald
understands and no timestamp (the journal adds one); ``LOCK=<id>`` is appended when a record
names a lock, so ``journalctl -u lockgate | grep LOCK=front-door`` finds one door's story.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


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
            return f"<{_PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def setup_logging(level: str) -> None:
    journal = bool(os.environ.get("JOURNAL_STREAM"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OperatorFormatter(journal))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "bleak", "bumble", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level)
