"""Running the demo: the state directory and logs, the site, the view, the walk-through, and
an orderly end on Ctrl-C (SIGINT) or SIGTERM.

A signal cancels the demo's main task, as ``asyncio.run`` does with Ctrl-C, so everything
unwinds through the site's exit stack whatever it was doing (starting up included): the
gateway closes, then the MQTT consumer, the serial bus and its pty, the fake cloud, the radio,
the broker; then the state directory goes (unless it was asked to be kept). A second signal
while that happens is ignored: the end is already on its way and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lockgate_sim.demo.site import SiteOptions, open_site
from lockgate_sim.demo.snapshot import Sampler
from lockgate_sim.demo.view import LiveView, PlainView, View
from lockgate_sim.demo.walkthrough import Timing, Walkthrough

LIVE_PERIOD_S = 0.25
PLAIN_PERIOD_S = 0.1
OUR_LOGGERS = ("gateway", "drivers", "fakecloud", "lockgate_sim")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    live: bool = False
    duration: float | None = None
    """End this long after the start, once the walk-through is done; ``None``: stay up after
    it until Ctrl-C."""
    keep_state: Path | None = None
    serial: bool = True
    ble: bool = True
    mqtt: bool = True
    timing: Timing = field(default_factory=Timing)


class _Said(logging.Handler):
    """Our own warnings become lines of the story (the full log is in ``demo.log``)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self._say = say

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._say(f"log {record.levelname.lower()}: {record.name}: {record.getMessage()}")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _logging(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    said = _Said(say)
    root.addHandler(to_file)
    root.setLevel(logging.INFO)
    ours = [logging.getLogger(name) for name in OUR_LOGGERS]
    for logger in ours:
        logger.addHandler(said)
    try:
        yield
    finally:
        for logger in ours:
            logger.removeHandler(said)
        root.removeHandler(to_file)
        root.setLevel(level)
        to_file.close()


def _make_state_dir(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="lockgate-demo-"))
    if keep.exists() and any(keep.iterdir()):
        raise FileExistsError(f"--keep-state {keep}: give an empty or new directory")
    keep.mkdir(parents=True, exist_ok=True)
    keep.chmod(0o700)
    return keep


class _Story:
    """``say``: a snapshot first (so the lines before it show what led here), then the line."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.sampler: Sampler | None = None

    def say(self, text: str) -> None:
        if self.sampler is not None:
            self.view.show(self.sampler.take())
        self.view.say(text)


async def run_demo(opts: DemoOptions, out: TextIO) -> int:
    """The whole demo; returns the exit code (0: done or stopped by a signal)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    signals: list[str] = []

    def on_signal(name: str) -> None:
        if not signals:
            main.cancel()
        signals.append(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    started = time.monotonic()
    view: View = LiveView(out, started) if opts.live else PlainView(out, started)
    story = _Story(view)
    try:
        state = _make_state_dir(opts.keep_state)
        try:
            with _logging(state / "demo.log", story.say):
                return await _run(opts, state, story, started)
        except asyncio.CancelledError:
            if not signals:
                raise
            main.uncancel()
            story.say(f"stopped on {signals[0]}: everything is closed")
            return 0
        finally:
            if opts.keep_state is None:
                shutil.rmtree(state, ignore_errors=True)
                story.say(f"state removed ({state})")
            else:
                story.say(f"state kept in {state} (the log is demo.log)")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        view.close()


async def _run(opts: DemoOptions, state: Path, story: _Story, started: float) -> int:
    say = story.say
    say("Lockgate demo: a whole site on this machine (Ctrl-C ends it)")
    kept = "kept" if opts.keep_state is not None else "removed at the end"
    say(f"state and log in {state} ({kept})")
    site_opts = SiteOptions(state, serial=opts.serial, ble=opts.ble, mqtt=opts.mqtt)
    async with open_site(site_opts, say) as site:
        story.sampler = Sampler(site, started)
        period = LIVE_PERIOD_S if opts.live else PLAIN_PERIOD_S
        refresh = asyncio.create_task(_refresh(story, period), name="demo-view")
        # shielded: giving up on the gateway's end must not cancel the gateway's own tasks
        assert site.serving is not None
        gateway = asyncio.shield(site.serving)
        walk = asyncio.create_task(
            Walkthrough(site, say, opts.timing).run(), name="demo-walkthrough"
        )
        tasks: list[asyncio.Future[Any]] = [refresh, gateway, walk]
        try:
            return await _until_done(opts, gateway, walk, say, started)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            view_last = story.sampler
            story.sampler = None
            story.view.show(view_last.take())


async def _until_done(
    opts: DemoOptions,
    gateway: asyncio.Future[None],
    walk: asyncio.Task[bool],
    say: Callable[[str], None],
    started: float,
) -> int:
    either: set[asyncio.Future[Any]] = {gateway, walk}
    done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if gateway in done:
        say(f"the gateway stopped: {gateway.exception()!r}")
        return 1
    ok = walk.result()
    if opts.duration is None:
        say("the site keeps running: the view stays live; Ctrl-C ends it")
        await gateway
        return 1
    remaining = started + opts.duration - time.monotonic()
    if remaining > 0:
        say(f"staying up {remaining:.0f} s more (--duration {opts.duration:g})")
        await asyncio.wait({gateway}, timeout=remaining)
        if gateway.done():
            say(f"the gateway stopped: {gateway.exception()!r}")
            return 1
    return 0 if ok else 1


async def _refresh(story: _Story, period: float) -> None:
    while True:
        if story.sampler is not None:
            story.view.show(story.sampler.take())
        await asyncio.sleep(period)
