"""Open the SQLite database, apply migrations, hand out transactions.

WAL journal with ``synchronous=FULL``: a committed transaction survives a power cut, and a
``kill -9`` at any moment leaves the last committed state. Every write goes through
:meth:`Database.transaction`, so a change is all there or not there.

A full disk is not the end: a write that finds no space raises :class:`StoreFullError` (the
transaction is rolled back, what was committed before stays), :attr:`Database.full` says so
until a write succeeds again, and the callers keep running on what the store holds and retry
(see :mod:`gateway.store_keeper`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.store.schema import MIGRATIONS

log = logging.getLogger(__name__)

SQLITE_FULL = 13
T = TypeVar("T")


class StoreError(Exception):
    """The database cannot be used (newer schema than this code, corrupt file)."""


class StoreFullError(StoreError):
    """A write found no space on the store's disk; nothing of it was kept."""

    code = "store_full"


def is_full(err: BaseException) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(err, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_FULL


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = _connect(path)
        self._bulk_conn: sqlite3.Connection | None = None
        self._bulk_lock = asyncio.Lock()
        self._bulk_busy = threading.Lock()
        """Held by the worker thread while it uses the bulk connection (see :meth:`close`)."""
        self._closed = False
        self._bulk_after: list[Callable[[], None]] | None = None
        self._behind: concurrent.futures.ThreadPoolExecutor | None = None
        self._behind_conn: sqlite3.Connection | None = None
        """While a bulk write runs: what to do once it has committed (see :meth:`after_commit`)."""
        self._depth = 0
        self._after: list[Callable[[], None]] = []
        self.full_since: datetime | None = None
        """When a write last found the disk full (``None``: writes succeed)."""
        self.became_full = asyncio.Event()
        """Set while the disk is full (a keeper waits on it to retry)."""
        self.migrated_from = self._migrate()

    @property
    def writing_elsewhere(self) -> bool:
        """A bulk write is under way on the other connection: its commit may become visible on
        :attr:`conn` at any moment, before its :meth:`after_commit` callbacks have run."""
        return self._bulk_after is not None

    def after_commit(self, conn: sqlite3.Connection, then: Callable[[], None]) -> None:
        """Call ``then`` (on the event loop's thread) once the transaction open on ``conn``
        has committed; never if it rolls back. For what lives in memory beside the rows (the
        data version): it must not run ahead of what a reader of :attr:`conn` can see."""
        if conn is self.conn and self._depth:
            self._after.append(then)
        elif conn is self._bulk_conn and self._bulk_after is not None:
            self._bulk_after.append(then)
        else:
            raise RuntimeError("after_commit: no transaction of this database is open there")

    @property
    def full(self) -> bool:
        return self.full_since is not None

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> int:
        start = self.schema_version
        if start > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {start}, newer than this Lockgate "
                f"understands ({len(MIGRATIONS)}); upgrade Lockgate or restore a backup"
            )
        for version in range(start, len(MIGRATIONS)):
            with self.transaction() as conn:
                # Statement by statement: executescript() would commit the open transaction.
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version + 1}")
        return start

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on :attr:`conn`: every statement in it sees the same committed
        state (one WAL snapshot), never a commit made by another connection between two of
        them. Inside a transaction already open there, that one. Only reads belong in it."""
        if self._depth or self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN DEFERRED")
        try:
            yield self.conn
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")  # nothing was written: this only ends the read

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one.

        ``durable=False``: the commit does not wait for the disk (``synchronous=NORMAL`` for
        this one commit): a crash of the process loses nothing, a power cut may lose it, and
        the next durable commit (or checkpoint) makes it durable too, the WAL being written in
        order. Only for what may be lost without harm (an event's delivery mark: the event is
        sent again, and consumers drop duplicates by ``event_id``). Joining an outer
        transaction, it is as durable as that one."""
        if durable or self._depth:
            with self._transaction() as conn:
                yield conn
            return
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction() as conn:
                yield conn
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
            self._depth = 0
            self.conn.execute("COMMIT")
        except BaseException as err:
            self._depth = 0
            self._after.clear()
            # SQLite may already have rolled back (SQLITE_FULL at COMMIT does).
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if is_full(err):
                self._now_full(err)
                raise StoreFullError(f"{self.path}: the disk is full ({err})") from err
            raise
        _run(self._after)
        if self.full_since is not None:
            self._writable_again()

    async def bulk_write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``write`` in one transaction on a connection of its own, in a worker thread.

        For writes of tens of thousands of rows (a full snapshot): the event loop goes on
        serving, and reads on :attr:`conn` see the previous committed state until this one
        commits (WAL). ``write`` must only use the connection it is given (and
        :meth:`after_commit` with it). A full disk raises :class:`StoreFullError` as
        :meth:`transaction` does. Returns what ``write`` returns.
        """
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        await self._bulk_lock.acquire()
        try:
            if self._bulk_conn is None:
                self._bulk_conn = _connect(self.path)
            self._bulk_after = []
            done = asyncio.ensure_future(asyncio.to_thread(self._bulk_run, write))
        except BaseException:
            self._bulk_after = None
            self._bulk_lock.release()
            raise
        # The thread cannot be stopped: if this task is cancelled, the write goes on and may
        # commit, so what follows a commit (and the next bulk write) waits for the thread.
        done.add_done_callback(self._bulk_done)
        try:
            result = await asyncio.shield(done)
        except sqlite3.Error as err:
            if is_full(err):
                self._now_full(err)
                raise StoreFullError(f"{self.path}: the disk is full ({err})") from err
            raise
        if self.full_since is not None:
            self._writable_again()
        return result

    def _bulk_run(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """In the worker thread: the write, unless the database was closed meanwhile."""
        with self._bulk_busy:
            if self._bulk_conn is None:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            return _write_in(self._bulk_conn, write)

    def _bulk_done(self, done: asyncio.Future[Any]) -> None:
        after, self._bulk_after = self._bulk_after, None
        try:
            if not done.cancelled() and done.exception() is None and after:
                _run(after)
        finally:
            self._bulk_lock.release()

    def _now_full(self, err: BaseException) -> None:
        if self.full_since is None:
            self.full_since = datetime.now(UTC)
            self.became_full.set()
            log.warning(
                "store_full: %s: %s; the gateway keeps serving its locks and decisions from "
                "what the store holds and retries the writes (free space on that disk)",
                self.path,
                err,
            )

    def _writable_again(self) -> None:
        assert self.full_since is not None
        seconds = (datetime.now(UTC) - self.full_since).total_seconds()
        self.full_since = None
        self.became_full.clear()
        log.warning("the store takes writes again (it was full for %.0fs)", seconds)

    def write_behind(
        self, write: Callable[[sqlite3.Connection], None]
    ) -> concurrent.futures.Future[None]:
        """Queue ``write`` to run in one transaction on a connection of its own, in a thread of
        its own: writes queued here commit one after another, in the order they were queued,
        while the event loop goes on (a ``synchronous=FULL`` commit waits for the disk). For
        the group commit of decisions. ``write`` must only use the connection it is given.
        Hand the finished future to :meth:`settled` on the event loop's thread."""
        if self._behind is None:
            self._behind = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="lockgate-store"
            )
        return self._behind.submit(self._write_behind, write)

    def _write_behind(self, write: Callable[[sqlite3.Connection], None]) -> None:
        if self._behind_conn is None:
            self._behind_conn = _connect(self.path)
        _write_in(self._behind_conn, write)

    def settled(self, done: concurrent.futures.Future[None]) -> None:
        """What a :meth:`write_behind` came to: returns if it committed, raises what it raised
        (:class:`StoreFullError` for a full disk). On the event loop's thread."""
        err = done.exception()
        if err is None:
            if self.full_since is not None:
                self._writable_again()
            return
        if is_full(err):
            self._now_full(err)
            raise StoreFullError(f"{self.path}: the disk is full ({err})") from err
        raise err

    def close(self) -> None:
        if self._behind is not None:
            self._behind.shutdown(wait=True)  # what was queued commits first
        if self._behind_conn is not None:
            self._behind_conn.close()
        # A bulk write whose task was cancelled goes on in its thread: wait for it before
        # closing its connection under it (that crashes the interpreter, not just the write).
        with self._bulk_busy:
            self._closed = True
            if self._bulk_conn is not None:
                self._bulk_conn.close()
                self._bulk_conn = None
        self.conn.close()


def _run(callbacks: list[Callable[[], None]]) -> None:
    todo = list(callbacks)
    callbacks.clear()
    for then in todo:
        then()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _write_in(conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = write(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLITE_FULL at COMMIT may already have rolled back
            conn.execute("ROLLBACK")
        raise
    return result
