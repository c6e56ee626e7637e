"""One command-class call to a lock, bounded in time, with errors as driver errors.

zwave-js answers a command for an unreachable node after its own retries; ``timeout`` bounds
the wait anyway (a server that stopped answering). Error codes are zwave-js's ``ZWaveErrorCodes``.
"""

from __future__ import annotations

import asyncio
from typing import Any

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


async def invoke(
    node: Node,
    cc: CommandClass,
    method: str,
    *args: Any,
    within: float,
    lock_id: str,
) -> Any:
    """``node.async_invoke_cc_api`` waiting for the lock's answer."""
    try:
        async with asyncio.timeout(within):
            return await node.async_invoke_cc_api(cc, method, *args, wait_for_result=True)
    except TimeoutError:
        raise LockTimeoutError(
            f"{cc.name}.{method}: no answer in {within:g} s", lock_id=lock_id
        ) from None
    except BaseZwaveJSServerError as err:
        raise translate(err, f"{cc.name}.{method}", lock_id) from None
