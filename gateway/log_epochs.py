"""Which log a lock's audit-log cursor counts in, and when a read starts a new one.

A lock's ``seq`` numbers count in one log: a new device under the same lock id, or a lock
that lost its log, counts from 1 again. The driver names the log it reads
(:meth:`drivers.base.LockDriver.log_origin`); the gateway keeps that origin with the cursor
(:mod:`gateway.store.lock_logs`) and, when the log is another one, reads it from the start as
a new *epoch*: event ids ``<lock>:<epoch>:<seq>`` from epoch 1 on, never the ids of an earlier
log (the first log's ids stay ``<lock>:<seq>``).

:func:`follow` is the whole rule:

* nothing kept yet: the first log of the lock id (epoch 0, cursor 0);
* another origin than the one kept: a new log;
* the gateway forgot the lock (removed, or dropped from the config): a new log, unless the
  driver names the same origin as before (the same device and log: its cursor holds);
* no origin kept yet (a cursor kept before origins were, or a driver that names none) and
  the driver names one now: adopted, the cursor and the ids go on as they were;
* otherwise the same log.

And :func:`went_back`: the driver says its log's newest ``seq`` is below the cursor although
the origin is the same (the lock lost its log): a new log as well, rather than waiting, events
unread, until the new log passes the old cursor.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from gateway.store.lock_logs import LogPosition


class LogChange(enum.StrEnum):
    SAME = "same"
    FIRST = "first"
    """Nothing kept yet for this lock id."""
    ADOPTED = "adopted"
    """The driver named an origin where none was kept: the same log, its origin now known."""
    RECOGNISED = "recognised"
    """A forgotten lock came back with the origin it had: the same log, the cursor holds."""
    NEW_ORIGIN = "new_origin"
    FORGOTTEN = "forgotten"
    """The gateway forgot the lock and cannot tell that this is the same log."""
    WENT_BACK = "went_back"


NEW_LOG = frozenset({LogChange.NEW_ORIGIN, LogChange.FORGOTTEN, LogChange.WENT_BACK})
"""The changes that start a new epoch."""


def follow(kept: LogPosition | None, origin: str | None) -> tuple[LogPosition, LogChange]:
    """Where to read the log the driver names ``origin`` from, and why."""
    if kept is None:
        return LogPosition(origin, 0, 0), LogChange.FIRST
    if origin is not None and kept.origin is not None and origin != kept.origin:
        return new_log(kept, origin), LogChange.NEW_ORIGIN
    if kept.forgotten:
        if origin is not None and origin == kept.origin:
            return replace(kept, forgotten=False), LogChange.RECOGNISED
        return new_log(kept, origin), LogChange.FORGOTTEN
    if origin is not None and kept.origin is None:
        return replace(kept, origin=origin), LogChange.ADOPTED
    return kept, LogChange.SAME


def went_back(position: LogPosition, head: int | None) -> bool:
    """The log's newest ``seq`` (``head``, when the driver knows it) is below the cursor."""
    return head is not None and head < position.seq


def new_log(kept: LogPosition, origin: str | None) -> LogPosition:
    """The next epoch, read from its start."""
    return LogPosition(origin if origin is not None else kept.origin, kept.epoch + 1, 0)


def event_id(lock_id: str, epoch: int, seq: int) -> str:
    """A log entry's event id: ``<lock>:<seq>`` in epoch 0 (the ids as they always were),
    ``<lock>:<epoch>:<seq>`` after. Lock ids hold no ``:`` (``LockConfigBase.id``), so no id
    of one log can be another's."""
    return f"{lock_id}:{seq}" if epoch == 0 else f"{lock_id}:{epoch}:{seq}"
