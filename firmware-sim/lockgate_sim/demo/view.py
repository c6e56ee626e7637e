"""Two ways to show the site: a live terminal view, and plain lines for logs and pipes.

Both take the walk-through's narration (:meth:`say`) and snapshots of the site (:meth:`show`).
:class:`LiveView` redraws one screen with ANSI escapes (the alternate screen, so the terminal
is as it was afterwards, then the story is printed as plain lines). :class:`PlainView` prints
what changed since the last snapshot, one line per change: a credential's sync state, a lock's
link, a new access event, the cloud going away or coming back.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from datetime import datetime
from typing import Protocol, TextIO

from lockgate_sim.demo.snapshot import STATE_ORDER, CredRow, EventRow, Snapshot
from lockgate_sim.demo.wrap import narration_rows

PROGRESS_EVERY_S = 0.5
NARRATION_LINES = 7
COMPACT_BELOW = 32
"""Terminals shorter than this get no blank lines between sections and less narration."""


class View(Protocol):
    def say(self, text: str) -> None: ...

    def show(self, snap: Snapshot) -> None: ...

    def close(self) -> None: ...


def clock_text(t: datetime | None) -> str:
    return "--:--:--" if t is None else t.astimezone().strftime("%H:%M:%S")


def event_verb(kind: str) -> str:
    return {"access_allowed": "allowed", "access_denied": "denied"}.get(kind, kind)


def event_text(e: EventRow, lock_link: str) -> str:
    decided = {"lock": "decided by the lock", "gateway": "decided by the gateway"}
    by = decided.get(e.source, e.source)
    verb = event_verb(e.kind)
    reason = f"  {e.reason}" if e.reason else ""
    return f"{e.lock_id} ({lock_link})  {verb}  {e.label}{reason}  ({by})"


def _links(snap: Snapshot) -> dict[str, str]:
    return {lock.lock_id: lock.link for lock in snap.locks}


# --- plain ------------------------------------------------------------------------------------
class PlainView:
    """One line per change, prefixed with the seconds since the start."""

    def __init__(self, out: TextIO, started: float) -> None:
        self._out = out
        self._started = started
        self._last: Snapshot | None = None
        self._progress_at: dict[str, float] = {}
        self._progress_seen: dict[str, tuple[int, int]] = {}
        self._printed: set[int] = set()

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._out.write(f"{elapsed:6.1f}s  {text}\n")
        self._out.flush()

    def say(self, text: str) -> None:
        self._print(text)

    def show(self, snap: Snapshot) -> None:
        last, self._last = self._last, snap
        links = _links(snap)
        for line in _cloud_changes(last, snap):
            self._print(line)
        for line in _lock_changes(last, snap):
            self._print(line)
        for line in _cred_changes(last, snap):
            self._print(line)
        self._progress(snap)
        for e in snap.events:  # in time order; each printed once, when first seen
            if e.seq not in self._printed:
                self._printed.add(e.seq)
                self._print("event  " + event_text(e, links.get(e.lock_id, "?")))
        said = snap.mqtt.availability if snap.mqtt is not None else None
        before = last.mqtt.availability if last is not None and last.mqtt is not None else None
        if said is not None and said != before:
            self._print(f"MQTT: the gateway says it is {said}")

    def _progress(self, snap: Snapshot) -> None:
        now = time.monotonic()
        for p in snap.progress:
            seen = (p.done, p.total)
            if p.total == 0 or self._progress_seen.get(p.lock_id) == seen:
                continue
            if now - self._progress_at.get(p.lock_id, 0.0) < PROGRESS_EVERY_S:
                continue
            self._progress_at[p.lock_id] = now
            self._progress_seen[p.lock_id] = seen
            self._print(f"{p.lock_id} ({p.link}): pushing, {p.done}/{p.total} on the lock")
        active = {p.lock_id for p in snap.progress}
        for lock_id in list(self._progress_seen):
            if lock_id not in active:
                del self._progress_seen[lock_id]

    def close(self) -> None:
        self._out.flush()


def _cloud_changes(last: Snapshot | None, snap: Snapshot) -> list[str]:
    was = last.cloud.reachable if last is not None else None
    now = snap.cloud.reachable
    if now == was or now is None:
        return []
    if now:
        return [f"cloud: reachable ({snap.cloud.grants} grants, {snap.cloud.methods} credentials)"]
    return [f"cloud: unreachable ({snap.cloud.error}); the gateway works from its store"]


def _lock_changes(last: Snapshot | None, snap: Snapshot) -> list[str]:
    before = {lock.lock_id: lock for lock in last.locks} if last is not None else {}
    lines: list[str] = []
    for lock in snap.locks:
        prev = before.get(lock.lock_id)
        if prev is not None and prev.connected == lock.connected and prev.error == lock.error:
            continue
        if prev is None and not lock.connected and lock.error is None:
            continue
        state = "in service" if lock.connected else "not in service"
        why = f" ({lock.error})" if lock.error and not lock.connected else ""
        lines.append(f"lock {lock.lock_id} ({lock.link}): {state}{why}")
    return lines


def _cred_changes(last: Snapshot | None, snap: Snapshot) -> list[str]:
    links = _links(snap)
    before = {(c.lock_id, c.method_id): c for c in last.creds} if last is not None else {}
    after = {(c.lock_id, c.method_id): c for c in snap.creds}
    grouped: dict[tuple[str, str, str, str], int] = defaultdict(int)
    lines: list[str] = []

    def change(row: CredRow, was: str, now: str) -> None:
        if row.label.group is not None:
            grouped[(row.lock_id, row.label.group, was, now)] += 1
            return
        why = f" ({row.error_code})" if row.error_code and now == "failed" else ""
        lines.append(
            f"{row.lock_id} ({links.get(row.lock_id, '?')})  {row.label}  {was} → {now}{why}"
        )

    for key, row in after.items():
        prev = before.get(key)
        was = prev.state if prev is not None else "new"
        if was != row.state:
            change(row, was, row.state)
    for key, row in before.items():
        if key not in after:
            change(row, row.state, "gone from the lock")
    for (lock_id, group, was, now), n in grouped.items():
        lines.append(f"{lock_id} ({links.get(lock_id, '?')})  {n} {group} PINs  {was} → {now}")
    return lines


# --- live -------------------------------------------------------------------------------------
RESET = "\x1b[0m"
STYLES = {
    "": "",
    "b": "\x1b[1m",
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "cyan": "\x1b[36m",
    "head": "\x1b[1;7m",
}
STATE_STYLE = {
    "applied": "green",
    "pending": "yellow",
    "scheduled": "cyan",
    "removing": "yellow",
    "failed": "red",
    "gone": "dim",
}

Segment = tuple[str, str]
Line = list[Segment]


def _fit(line: Line, width: int, color: bool) -> str:
    out: list[str] = []
    room = width
    for text, style in line:
        if room <= 0:
            break
        piece = text[:room]
        room -= len(piece)
        if color and STYLES.get(style):
            out.append(f"{STYLES[style]}{piece}{RESET}")
        else:
            out.append(piece)
    return "".join(out)


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = 0 if total == 0 else round(width * done / total)
    return "█" * filled + "░" * (width - filled)


def _ago(now: datetime, t: datetime | None) -> str:
    if t is None:
        return "never"
    return f"{max(0.0, (now - t).total_seconds()):.1f} s ago"


class LiveView:
    """The whole screen, redrawn on each snapshot; the story is printed again at the end.

    The story's lines wrap to the terminal's width (a command to paste wraps as a shell
    command, see :mod:`lockgate_sim.demo.wrap`); the tables above it are cut at the edge.
    """

    def __init__(self, out: TextIO, started: float, *, color: bool | None = None) -> None:
        self._out = out
        self._started = started
        self._color = color if color is not None else "NO_COLOR" not in os.environ
        self._story: list[tuple[str, str]] = []
        """(the time, the text) of each line said; the text may be a :class:`Paste`"""
        self._last: Snapshot | None = None
        self._compact = False
        self._out.write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
        self._out.flush()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._story.append((f"{elapsed:6.1f}s  ", text))
        if self._last is not None:
            self._draw(self._last)
        else:
            self._draw_starting()

    def show(self, snap: Snapshot) -> None:
        self._last = snap
        self._draw(snap)

    def close(self) -> None:
        self._out.write("\x1b[?25h\x1b[?1049l")
        for stamp, text in self._story:
            self._out.write(stamp + text + "\n")
        if self._last is not None:
            self._out.write(_summary(self._last) + "\n")
        self._out.flush()

    # --- drawing ----------------------------------------------------------------------------
    def _gap(self, lines: list[Line]) -> None:
        """A blank line between sections, unless the terminal is short."""
        if not self._compact:
            lines.append([])

    def _draw(self, snap: Snapshot) -> None:
        size = shutil.get_terminal_size((110, 40))
        width, height = size.columns, max(size.lines, 20)
        self._compact = height < COMPACT_BELOW
        top = self._top(snap)
        story = self._story_lines(height, width)
        creds = self._cred_lines(snap, width)
        events = self._event_lines(snap)
        room = max(0, height - len(top) - len(story) - 1)
        cred_room = min(len(creds), max(room // 2, room - len(events)))
        if cred_room < len(creds) and cred_room > 0:
            hidden = len(creds) - cred_room + 1
            creds = [*creds[: cred_room - 1], [(f"  … {hidden} more lines", "dim")]]
        else:
            creds = creds[:cred_room]
        events = events[: max(0, room - len(creds))]
        lines = [*top, *creds, *events, *story]
        text = "\x1b[H" + "\n".join(_fit(line, width, self._color) + "\x1b[K" for line in lines)
        self._out.write(text + "\x1b[J")
        self._out.flush()

    def _draw_starting(self) -> None:
        """Before the gateway runs: the title and what has started so far."""
        size = shutil.get_terminal_size((110, 40))
        lines: list[Line] = [[(" Lockgate demo · starting the site ", "head")], []]
        rows = [
            row
            for stamp, text in self._story[-(size.lines - 3) :]
            for row in narration_rows(" " + stamp, text, size.columns)
        ]
        lines += [[(row, "")] for row in rows[-(size.lines - 3) :]]
        body = "\n".join(_fit(line, size.columns, self._color) + "\x1b[K" for line in lines)
        self._out.write("\x1b[H" + body + "\x1b[J")
        self._out.flush()

    def _top(self, snap: Snapshot) -> list[Line]:
        minutes, seconds = divmod(int(snap.elapsed), 60)
        lines: list[Line] = [
            [
                (f" Lockgate demo · gateway 'demo' · {clock_text(snap.now)} · ", "head"),
                (f"{minutes}:{seconds:02d} elapsed · Ctrl-C ends it ", "head"),
            ],
        ]
        cloud = snap.cloud
        if cloud.reachable is None:
            reach = ("not yet synced", "yellow")
        else:
            reach = ("reachable", "green") if cloud.reachable else ("unreachable", "red")
        lines.append(
            [
                (" cloud  ", "b"),
                (f"{cloud.url}  ", ""),
                reach,
                (f"  last sync {_ago(snap.now, cloud.last_sync_at)}", ""),
                (f"  grants {cloud.grants}  credentials {cloud.methods}", "dim"),
            ]
        )
        if snap.mqtt is not None:
            m = snap.mqtt
            avail = m.availability or "unknown"
            lines.append(
                [
                    (" mqtt   ", "b"),
                    (f"{m.address}  gateway ", ""),
                    (avail, "green" if avail == "online" else "red"),
                    (f"  events received {m.events} of {snap.event_count} recorded", ""),
                ]
            )
        self._gap(lines)
        widths = {"applied": 8, "pending": 8, "failed": 7, "scheduled": 10, "removing": 9}
        header = (
            f" {'LOCK':<7}{'LINK':<7}{'UP':<4}{'BOLT':<9}"
            + "".join(f"{state:>{widths[state]}}" for state in STATE_ORDER)
            + f"{'on lock':>9}"
        )
        lines.append([(header, "b")])
        for lock in snap.locks:
            row: Line = [
                (f" {lock.lock_id:<7}{lock.link:<7}", ""),
                (f"{'yes' if lock.connected else 'no':<4}", "green" if lock.connected else "red"),
                (f"{lock.bolt:<9}", "yellow" if lock.bolt == "unlocked" else ""),
            ]
            for state in STATE_ORDER:
                n = lock.states.get(state, 0)
                row.append((f"{n:>{widths[state]}}", STATE_STYLE[state] if n else "dim"))
            row.append((f"{lock.held:>9}", ""))
            if lock.error and not lock.connected:
                row.append((f"  {lock.error}", "red"))
            lines.append(row)
        for p in snap.progress:
            if p.total:
                lines.append(
                    [
                        (f" pushing to {p.lock_id} ({p.link}) ", "yellow"),
                        (_bar(p.done, p.total), "yellow"),
                        (f" {p.done}/{p.total} on the lock", ""),
                    ]
                )
            if p.removing:
                lines.append([(f" removing {p.removing} from {p.lock_id} ({p.link})", "yellow")])
        self._gap(lines)
        return lines

    def _cred_lines(self, snap: Snapshot, width: int) -> list[Line]:
        """One row per credential (a group's as one row), one column per lock: sync state."""
        rows: dict[str, dict[str, list[CredRow]]] = defaultdict(lambda: defaultdict(list))
        for c in snap.creds:
            key = f"{c.label.group} PINs" if c.label.group is not None else str(c.label)
            rows[key][c.lock_id].append(c)
        label_w = max([24, *(len(key) + 2 for key in rows)])
        cell_w = max(11, (width - label_w - 1) // max(1, len(snap.locks)))
        head = "".join(f"{lock.lock_id:<{cell_w}}" for lock in snap.locks)
        lines: list[Line] = [[(f" {'CREDENTIALS (sync state)':<{label_w}}", "b"), (head, "b")]]
        grouped = sorted(rows, key=lambda key: (not key.endswith(" PINs"), key))
        for key in grouped:
            line: Line = [(f" {key:<{label_w}}", "")]
            for lock in snap.locks:
                text, style = _cell(rows[key].get(lock.lock_id, []))
                line.append((f"{text:<{cell_w}}"[:cell_w], style))
            lines.append(line)
        self._gap(lines)
        return lines

    def _event_lines(self, snap: Snapshot) -> list[Line]:
        lines: list[Line] = [[(f" ACCESS EVENTS ({snap.event_count}, newest first)", "b")]]
        for e in reversed(snap.events):
            verb = event_verb(e.kind)
            style = {"allowed": "green", "denied": "red"}.get(verb, "dim")
            lines.append(
                [
                    (f" {clock_text(e.at)}  {e.lock_id:<8}", ""),
                    (f"{verb:<9}", style),
                    (f"{e.label!s:<34}{e.reason:<24}", ""),
                    (f"decided by the {e.source}" if e.source else "", "dim"),
                ]
            )
        return lines

    def _story_lines(self, height: int, width: int) -> list[Line]:
        """The last lines said, each whole (wrapped over as many rows as it needs)."""
        keep = 3 if self._compact else min(NARRATION_LINES, height // 4)
        lines: list[Line] = []
        self._gap(lines)
        lines.append([(" WALK-THROUGH", "b")])
        for stamp, text in self._story[-keep:]:
            style = "green" if "✓" in text else "red" if "✗" in text else ""
            lines += [[(row, style)] for row in narration_rows(" " + stamp, text, width)]
        return lines


def _cell(creds: list[CredRow]) -> tuple[str, str]:
    if not creds:
        return "·", "dim"
    if len(creds) == 1:
        c = creds[0]
        failed = f" {c.error_code}" if c.state == "failed" and c.error_code else ""
        return c.state + failed, STATE_STYLE.get(c.state, "")
    counts: dict[str, int] = defaultdict(int)
    for c in creds:
        counts[c.state] += 1
    if len(counts) == 1:
        state = next(iter(counts))
        return f"{counts[state]} {state}", STATE_STYLE.get(state, "")
    worst = next(s for s in ("failed", "pending", "removing", "scheduled", "applied") if counts[s])
    return f"{counts['applied']}/{len(creds)} applied", STATE_STYLE[worst]


def _summary(snap: Snapshot) -> str:
    mqtt = f", {snap.mqtt.events} received over MQTT" if snap.mqtt is not None else ""
    return f"{snap.event_count} access events recorded by the gateway{mqtt}"
