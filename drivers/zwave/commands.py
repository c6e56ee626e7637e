"""One command-class call to a lock, bounded in time, with errors as driver errors.

zwave-js answers a command for an unreachable node after its own retries; ``timeout`` bounds
the wait anyway (a server that stopped answering). Error codes are zwave-js's ``ZWaveErrorCodes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from zwave_js_server.const import CommandClass
from zwave_js_server.exceptions import (
    BaseZwaveJSServerError,
    FailedZWaveCommand,
    NotConnected,
)
from zwave_js_server.model.node import Node

from drivers.errors import (
    DriverError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
    UnsupportedError,
)

ARGUMENT_INVALID = 322
CC_NOT_SUPPORTED = 302
NODE_NOT_FOUND = 211
T = TypeVar("T")


class ZWaveArgumentError(DriverError):
    """zwave-js refused a command's arguments before sending it (ZW0322)."""

    code = "code_rule"
    retryable = False


def translate(err: BaseZwaveJSServerError, what: str, lock_id: str) -> DriverError:
    if isinstance(err, FailedZWaveCommand):
        code = err.zwave_error_code
        detail = f"{what}: Z-Wave JS error {code}"
        if 200 <= code < 300 and code != NODE_NOT_FOUND:
            return LockTimeoutError(f"{detail} (the node did not answer)", lock_id=lock_id)
        if code == NODE_NOT_FOUND:
            return LockOfflineError(f"{detail} (node not in the network)", lock_id=lock_id)
        if code == ARGUMENT_INVALID:
            return ZWaveArgumentError(f"{detail} (argument refused)", lock_id=lock_id)
        if code == CC_NOT_SUPPORTED:
            return UnsupportedError(f"{detail} (not supported by the lock)", lock_id=lock_id)
        return ProtocolError(detail, lock_id=lock_id)
    if isinstance(err, NotConnected):
        return LockOfflineError(f"{what}: not connected to Z-Wave JS", lock_id=lock_id)
    # The message of a foreign error may echo arguments (a PIN): keep only its type.
    return LockOfflineError(f"{what}: {type(err).__name__}", lock_id=lock_id)


async def guarded(call: Awaitable[T], what: str, *, within: float, lock_id: str) -> T:
    """Await one request to Z-Wave JS: bounded by ``within``, errors as driver errors.

    When the websocket closes, the client cancels the futures of requests in flight: that
    cancellation is not ours (our task is not being cancelled), so it becomes a
    :class:`LockOfflineError` instead of ending the caller's task.
    """
    try:
        async with asyncio.timeout(within):
            return await call
    except TimeoutError:
        raise LockTimeoutError(f"{what}: no answer in {within:g} s", lock_id=lock_id) from None
    except BaseZwaveJSServerError as err:
        raise translate(err, what, lock_id) from None
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise LockOfflineError(
            f"{what}: the connection to Z-Wave JS closed mid-request", lock_id=lock_id
        ) from None


async def invoke(
    node: Node,
    cc: CommandClass,
    method: str,
    *args: Any,
    within: float,
    lock_id: str,
) -> Any:
    """``node.async_invoke_cc_api`` waiting for the lock's answer."""
    return await guarded(
        node.async_invoke_cc_api(cc, method, *args, wait_for_result=True),
        f"{cc.name}.{method}",
        within=within,
        lock_id=lock_id,
    )
