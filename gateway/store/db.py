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
import contextlib
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
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
        self._gate = threading.Lock()
        """Held while a write transaction of :meth:`bulk_write` or :meth:`write_behind` is open,
        and by the loop in a :meth:`turn`: SQLite's write lock as seen from Python, so a
        writer on the loop learns without waiting that another holds it."""
        self._gate_waiters: list[asyncio.Future[None]] = []
        self._in_turn = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._bulk_after: list[Callable[[], None]] | None = None
        """While a bulk write runs: what to do once it has committed (see :meth:`after_commit`)."""
        self.writing_elsewhere = False
        """A bulk write is under way on the other connection (:attr:`_bulk_after` is set): its
        commit may become visible on :attr:`conn` at any moment, before its
        :meth:`after_commit` callbacks have run. An attribute, not a property: the data
        version reads it on every decision."""
        self._behind: concurrent.futures.ThreadPoolExecutor | None = None
        self._behind_conn: sqlite3.Connection | None = None
        self._depth = 0
        self._after: list[Callable[[], None]] = []
        self.full_since: datetime | None = None
        """When a write last found the disk full (``None``: writes succeed)."""
        self.became_full = asyncio.Event()
        """Set while the disk is full (a keeper waits on it to retry)."""
        self.migrated_from = self._migrate()

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

    async def write(self, write: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """:meth:`transaction` for a writer on the event loop that can wait: runs ``write`` in a
        write transaction on :attr:`conn` in its :meth:`turn` and returns what it returns once
        committed. ``write`` runs on the loop's thread and may use :attr:`conn` only."""
        async with self.turn():
            with self.transaction(durable=durable) as conn:
                return write(conn)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait, without holding the loop, until no other connection of this database is
        writing, and keep them from starting until the block ends: the block's writes on
        :attr:`conn` (:meth:`transaction`) then never wait for them. The block must not
        await (the others wait for it meanwhile).

        While a :meth:`bulk_write` moves a snapshot in (a first full sync moves 200,000 rows,
        about half a second) or a :meth:`write_behind` commits, they hold the database's write
        lock; a :meth:`transaction` on :attr:`conn` would wait for it there, holding the loop.
        In a turn the caller's task waits instead, and what it promises after the write (a
        door answered, a cursor moved) still comes after the commit."""
        if self._in_turn or self._depth:  # this loop holds the gate already, or SQLite's lock
            yield
            return
        loop = asyncio.get_running_loop()
        while not self._gate.acquire(blocking=False):
            waiter = loop.create_future()
            self._gate_waiters.append(waiter)
            self._loop = loop
            if self._gate.acquire(blocking=False):  # released meanwhile: its wake may be gone
                self._gate_waiters.remove(waiter)
                break
            try:
                await waiter
            finally:
                if waiter in self._gate_waiters:
                    self._gate_waiters.remove(waiter)
        self._in_turn = True
        try:
            yield
        finally:
            self._in_turn = False
            self._gate.release()

    @property
    def writers_waiting(self) -> int:
        """How many :meth:`write` calls wait for another connection's write to commit."""
        return len(self._gate_waiters)

    def _gate_open(self) -> None:
        """Another connection's write ended (any thread): wake the writers that wait."""
        loop = self._loop
        if loop is None or not self._gate_waiters:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(self._wake_writers)

    def _wake_writers(self) -> None:
        waiters, self._gate_waiters = self._gate_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def bulk_write(
        self,
        write: Callable[[sqlite3.Connection], T],
        *,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> T:
        """Run ``write`` in one transaction on a connection of its own, in a worker thread.

        For writes of tens of thousands of rows (a full snapshot): the event loop goes on
        serving, and reads on :attr:`conn` see the previous committed state until this one
        commits (WAL). ``write`` must only use the connection it is given (and
        :meth:`after_commit` with it). A full disk raises :class:`StoreFullError` as
        :meth:`transaction` does. Returns what ``write`` returns.

        While ``write`` runs it holds the database's write lock, and a :meth:`transaction` on
        :attr:`conn` (on the event loop) waits for it there, holding the loop; the loop's
        writers use :meth:`write` or a :meth:`turn`, which wait in their task. The long part
        (comparing, sealing, building rows) goes in
        ``prepare``, which runs first on the same connection in a read transaction (what it
        reads is one consistent state) and writes only TEMP tables, which take no lock on the
        database: writes on :attr:`conn` go on meanwhile. ``write`` then moves the staged rows
        in with a few ``INSERT ... SELECT`` statements (SQLite's own loop, no Python per row),
        after checking that what ``prepare`` read is still what is committed. The TEMP tables
        are dropped once ``write`` is done.
        """
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        await self._bulk_lock.acquire()
        try:
            if self._bulk_conn is None:
                self._bulk_conn = _connect(self.path)
            self._bulk_after, self.writing_elsewhere = [], True
            done = asyncio.ensure_future(asyncio.to_thread(self._bulk_run, write, prepare))
        except BaseException:
            self._bulk_after, self.writing_elsewhere = None, False
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

    def _bulk_run(
        self,
        write: Callable[[sqlite3.Connection], T],
        prepare: Callable[[sqlite3.Connection], None] | None,
    ) -> T:
        """In the worker thread: the write, unless the database was closed meanwhile."""
        with self._bulk_busy:
            conn = self._bulk_conn
            if conn is None:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            try:
                if prepare is not None:
                    _read_in(conn, prepare)
                return self._gated(conn, write)
            finally:
                try:
                    _drop_temp_tables(conn)
                except sqlite3.Error as err:  # never in place of what the write raised
                    log.warning("could not drop a bulk write's staging tables: %s", err)

    def _bulk_done(self, done: asyncio.Future[Any]) -> None:
        after, self._bulk_after, self.writing_elsewhere = self._bulk_after, None, False
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
        self._gated(self._behind_conn, write)

    def _gated(self, conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], T]) -> T:
        """In a worker thread: ``write`` in a write transaction on ``conn``, holding the gate
        from before it takes SQLite's write lock until it has let it go, so a :meth:`write`
        on the loop waits for it off the loop (waits here for one in progress there)."""
        self._gate.acquire()
        try:
            return _write_in(conn, write)
        finally:
            self._gate.release()
            self._gate_open()

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


def _read_in(conn: sqlite3.Connection, prepare: Callable[[sqlite3.Connection], None]) -> None:
    """``prepare`` in a read transaction (``BEGIN DEFERRED``: it takes the write lock of no
    database but TEMP's, whose tables are this connection's own)."""
    conn.execute("BEGIN")
    try:
        prepare(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _drop_temp_tables(conn: sqlite3.Connection) -> None:
    """Drop what a bulk write staged (its TEMP file's pages go back at once)."""
    names = [r[0] for r in conn.execute("SELECT name FROM temp.sqlite_master WHERE type='table'")]
    for name in names:
        conn.execute(f'DROP TABLE temp."{name}"')


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
