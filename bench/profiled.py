"""Run ``lockgate`` with a profiler that a bench switches on and off by signal.

    python -m bench.profiled OUT.prof run --config lockgate.toml

``SIGUSR1`` starts cProfile on CPU time (main thread: the event loop), ``SIGUSR2`` stops it
and writes ``OUT.prof`` (read it with ``python -m pstats OUT.prof``). Used by
``bench_idle.py --profile`` to profile the measured window only, not the start. The profiler's
own clock reads inflate the figure (several times); read it for where the time goes.
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from types import FrameType

from gateway.cli import main


def run() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    # CPU time, not wall time: what the idle bench counts (a blocking write is not CPU)
    profile = cProfile.Profile(time.process_time)

    def start(_sig: int, _frame: FrameType | None) -> None:
        profile.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
