"""Keeping a long-running loop alive: one part's bug never takes the process down.

:func:`supervised` runs a loop (the cloud sync, a lock's reconciler, the MQTT plane...) and, if
it ends with an exception nobody anticipated, logs it once at ERROR with its traceback, waits
(capped exponential backoff, the maximum for a repeat of the same failure) and starts it again.
Only cancellation ends it, and it always does: ``CancelledError`` is never caught, and an error
raised while the task is being cancelled (a library that turned our cancellation into its own
error) is taken for the cancellation it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from drivers.backoff import Backoff
from gateway.handle import pass_cancellation

log = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0

Sleep = Callable[[float], Awaitable[None]]


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
    sleep: Sleep = asyncio.sleep,
    fatal: tuple[type[Exception], ...] = (),
) -> None:
    """Run ``run()`` until it returns or the task is cancelled; restart it after a failure.

    Exceptions of the ``fatal`` types (faults a restart cannot cure) are raised, not retried.
    """
    policy = backoff or Backoff(RESTART_MIN_S, RESTART_MAX_S)
    last: str | None = None
    while True:
        try:
            await run()
        except fatal:
            raise
        except Exception as err:
            pass_cancellation()
            kind = type(err).__name__
            repeat = kind == last
            delay = policy.give_up_for_now() if repeat else policy.next_delay()
            log.log(
                logging.DEBUG if repeat else logging.ERROR,
                "%s failed unexpectedly (%s); restarting it in %.1fs",
                name,
                kind,
                delay,
                exc_info=err,
            )
            last = kind
            await sleep(delay)
        else:
            return
