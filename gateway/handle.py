"""One handle per lock: the only way from the gateway to a driver.

The way bleak's ``BleakClient`` wraps a platform backend, a :class:`LockHandle` wraps one
:class:`~drivers.base.LockDriver` and owns what every caller would otherwise repeat:

* **exclusivity**: one operation (or one reconciler pass) at a time per lock;
* **connect on demand**: :meth:`LockHandle.session` connects a driver that is not connected,
  except for commissioning (:meth:`LockHandle.commission`), which must reach a fresh lock that
  refuses any session until it is paired;
* **per-operation timeouts** (:class:`OpTimeouts`);
* **error normalisation**: whatever a driver raises comes out as a
  :class:`~drivers.errors.DriverError` carrying the lock's id — an exception outside that tree
  becomes :class:`~drivers.errors.DriverFault` (the original is ``__cause__``), a timeout
  becomes :class:`~drivers.errors.LockTimeoutError`. Cancellation is never turned into anything:
  when the calling task is being cancelled, ``CancelledError`` comes out, even if the driver
  converted it into an error of its own.

The reconciler, the management plane, commissioning and shutdown all go through a handle;
nothing else calls a driver. ``LockHandle.driver`` is there for tests and diagnostics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

from drivers.base import (
    BatchResult,
    Capabilities,
    Credential,
    EventPage,
    LockDriver,
    LockStatus,
    StoredCredential,
)
from drivers.errors import DriverError, DriverFault, LockTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OpTimeouts:
    """How long one driver call may take before the handle gives up on it."""

    connect_s: float = 30.0
    op_s: float = 60.0
    """One operation: a batch put, a listing, an unlock, one audit-log page."""
    commission_s: float = 120.0
    close_s: float = 10.0
    """Closing waits this long for an operation in flight, then closes anyway."""


def pass_cancellation() -> None:
    """Raise ``CancelledError`` if the current task is being cancelled.

    Called where a foreign error is caught: a driver (or a library under it) may have turned
    our cancellation into an error of its own, and it must not be taken for a lock problem.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class LockHandle:
    """The gateway's handle on one lock. An async context manager for the driver's lifetime."""

    def __init__(
        self,
        driver: LockDriver,
        timeouts: OpTimeouts | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.lock_id = driver.lock_id
        self.type_name = driver.type_name
        self.timeouts = timeouts or OpTimeouts()
        self._monotonic = monotonic
        self._mutex = asyncio.Lock()
        self._started = False
        self._closed = False
        self.connections = 0
        """How often the handle brought the link up (connect or commission): a change tells
        a caller that the lock may have rebooted or been replaced since it last looked."""
        self.activity: str | None = None
        """What holds the lock now (``"session"``, ``"commission"``, ...), ``None`` when idle."""
        self.busy_since: float | None = None
        """Monotonic time the current holder took the lock."""

    def __repr__(self) -> str:
        return f"<LockHandle {self.lock_id} ({self.type_name})>"

    # --- state -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Some operation holds the lock now."""
        return self._mutex.locked()

    @property
    def connected(self) -> bool:
        """The driver's own word; a driver whose ``connected`` raises counts as not connected."""
        try:
            return bool(self.driver.connected)
        except Exception:
            log.debug("%s: driver.connected raised", self.lock_id, exc_info=True)
            return False

    @property
    def awake(self) -> bool:
        """Whether the lock's link is up now (:attr:`drivers.base.LockDriver.awake`): reading
        it costs no wake-up. A driver whose ``awake`` raises counts as asleep."""
        try:
            return bool(self.driver.awake)
        except Exception:
            log.debug("%s: driver.awake raised", self.lock_id, exc_info=True)
            return False

    # --- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        """Start the driver. A driver that fails to start does not stop the gateway: the
        failure is logged and the first session starts it again (and reports the error)."""
        try:
            await self._start()
        except DriverError as err:
            log.error(  # noqa: TRY400 - a traceback only for a driver's bug (exc_info below)
                "%s: driver did not start (%s): %s",
                self.lock_id,
                err.code,
                err.message,
                exc_info=err.__cause__ if isinstance(err, DriverFault) else None,
                extra={"lock": self.lock_id},
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the driver once: waits (bounded) for an operation in flight, then closes."""
        if self._closed:
            return
        self._closed = True
        limit = self.timeouts.close_s
        try:
            async with asyncio.timeout(limit):
                await self._mutex.acquire()
        except TimeoutError:
            log.warning(
                "%s: operation %s still running after %.3gs; closing anyway",
                self.lock_id,
                self.activity,
                limit,
                extra={"lock": self.lock_id},
            )
            acquired = False
        else:
            acquired = True
        try:
            await self._call("close", self.driver.close, limit)
        except DriverError as err:
            log.warning(
                "%s: driver did not close cleanly (%s): %s",
                self.lock_id,
                err.code,
                err.message,
                extra={"lock": self.lock_id},
            )
        finally:
            if acquired:
                self._mutex.release()

    async def _start(self) -> None:
        if not self._started:
            await self._call("start", self.driver.start, self.timeouts.connect_s)
            self._started = True

    # --- holding the lock --------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def hold(self, activity: str = "held") -> AsyncIterator[None]:
        """Exclusivity without an operation: nothing runs on this lock inside the block
        (shutdown waits for idle locks with it)."""
        async with self._mutex:
            self.activity, self.busy_since = activity, self._monotonic()
            try:
                yield
            finally:
                self.activity = self.busy_since = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[LockOps]:
        """Hold the lock, connect if needed, and hand out its operations for the block."""
        async with self.hold("session"):
            if self._closed:
                raise DriverError("the lock was removed", lock_id=self.lock_id)
            await self._start()
            if not self.connected:
                await self._call("connect", self.driver.connect, self.timeouts.connect_s)
                self.connections += 1
            ops = LockOps(self)
            try:
                yield ops
            finally:
                ops._valid = False

    async def commission(self, pairing_secret: str, timeout_s: float | None = None) -> None:
        """Pair the lock with this gateway. Does not connect first: a fresh lock refuses a
        session until it is commissioned. The driver leaves the link connected."""
        limit = self.timeouts.commission_s if timeout_s is None else timeout_s
        async with self.hold("commission"):
            if self._closed:
                raise DriverError("the lock was removed", lock_id=self.lock_id)
            await self._start()
            await self._call("commission", lambda: self.driver.commission(pairing_secret), limit)
            self.connections += 1

    # --- one call ----------------------------------------------------------------------------
    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        scope = asyncio.timeout(timeout_s)
        try:
            async with scope:
                return await fn()
        except DriverError as err:
            pass_cancellation()
            if scope.expired():
                raise self._timed_out(what, timeout_s) from err
            if err.lock_id is None:
                err.lock_id = self.lock_id
            raise
        except TimeoutError as err:
            pass_cancellation()
            raise self._timed_out(what, timeout_s) from err
        except Exception as err:
            pass_cancellation()
            if scope.expired():
                raise self._timed_out(what, timeout_s) from err
            raise DriverFault(
                f"driver {self.type_name!r} raised {type(err).__name__} in {what}",
                lock_id=self.lock_id,
            ) from err

    def _timed_out(self, what: str, timeout_s: float) -> LockTimeoutError:
        return LockTimeoutError(
            f"{what} did not finish within {timeout_s:g}s", lock_id=self.lock_id
        )


class LockOps:
    """The operations of one lock, valid inside :meth:`LockHandle.session` only.

    Each call runs within the handle's per-operation timeout and raises only
    :class:`~drivers.errors.DriverError` (or ``CancelledError``).
    """

    def __init__(self, handle: LockHandle) -> None:
        self._handle = handle
        self._valid = True
        self.lock_id = handle.lock_id

    async def _op(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        if not self._valid:
            raise RuntimeError(f"{self.lock_id}: {what} outside the lock's session")
        return await self._handle._call(what, fn, self._handle.timeouts.op_s)

    async def capabilities(self) -> Capabilities:
        return await self._op("capabilities", self._handle.driver.capabilities)

    async def list_credentials(self) -> list[StoredCredential]:
        return await self._op("list_credentials", self._handle.driver.list_credentials)

    async def put_credentials(self, batch: Sequence[Credential]) -> BatchResult:
        return await self._op("put_credentials", lambda: self._handle.driver.put_credentials(batch))

    async def delete_credentials(self, credential_ids: Sequence[str]) -> BatchResult:
        driver = self._handle.driver
        return await self._op(
            "delete_credentials", lambda: driver.delete_credentials(credential_ids)
        )

    async def lock(self) -> None:
        await self._op("lock", self._handle.driver.lock)

    async def unlock(self, hold_seconds: float | None = None) -> None:
        await self._op("unlock", lambda: self._handle.driver.unlock(hold_seconds))

    async def status(self) -> LockStatus:
        return await self._op("status", self._handle.driver.status)

    async def fetch_events(self, after_seq: int, limit: int = 100) -> EventPage:
        return await self._op(
            "fetch_events", lambda: self._handle.driver.fetch_events(after_seq, limit)
        )

    async def ack_events(self, up_to_seq: int) -> None:
        await self._op("ack_events", lambda: self._handle.driver.ack_events(up_to_seq))

    async def log_origin(self) -> str | None:
        return await self._op("log_origin", self._handle.driver.log_origin)

    async def log_head(self) -> int | None:
        return await self._op("log_head", self._handle.driver.log_head)

    async def set_time(self, t: datetime) -> None:
        await self._op("set_time", lambda: self._handle.driver.set_time(t))


@contextlib.asynccontextmanager
async def quiesced(handles: Mapping[str, LockHandle], timeout_s: float) -> AsyncIterator[list[str]]:
    """Hold every lock's handle for the block: no driver operation is in flight inside.

    Operations under way get ``timeout_s`` in all to finish. Yields the ids of the locks whose
    operation did not; the caller cancels those with everything else. A reconciler pass is
    idempotent, so the next start finds what a cancelled one left and finishes it.
    """
    busy = [lock_id for lock_id, h in handles.items() if h.busy]
    if busy:
        log.info("waiting up to %.3gs for lock operations: %s", timeout_s, ", ".join(busy))
    deadline = asyncio.get_running_loop().time() + timeout_s
    stuck: list[str] = []
    async with contextlib.AsyncExitStack() as held:
        for lock_id, handle in list(handles.items()):
            try:
                async with asyncio.timeout_at(deadline):
                    await held.enter_async_context(handle.hold("shutdown"))
            except TimeoutError:
                stuck.append(lock_id)
                log.warning(
                    "%s: operation still running after %.3gs; cancelling it "
                    "(the next start takes it up again)",
                    lock_id,
                    timeout_s,
                    extra={"lock": lock_id},
                )
        yield stuck
