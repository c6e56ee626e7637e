"""The simulated lock's non-volatile memory: a snapshot followed by a journal of changes.

The file holds one JSON record a line. The first is a snapshot of the whole image (``"op":
"image"``); each following line is one change (a slot written or erased, an audit entry, an
acknowledgement, the link keys), appended and fsynced on its own, as firmware writes one slot at
a time. Writing a change therefore costs the change, not the whole memory.

Power cuts (SIGKILL of the process hosting the lock): a change is either a complete line or a
torn tail; the torn tail is ignored on load and cut off before the next append, so a reboot
ends with exactly the changes written before the cut. When the journal has grown past the size
of the image, the next change rewrites the file as a single snapshot: written to a temporary
file, fsynced, renamed over the old one (old or new, never half).

:func:`read_image` gives the image as a plain dict (what tests inspect); its keys are ``slots``,
``log``, ``next_seq``, ``acked_seq``, ``link_keys`` and ``put_counts``. A file holding a single
JSON object (the format before the journal) reads as a snapshot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

Record = dict[str, Any]

MIN_JOURNAL = 256
"""Changes appended before a compaction is considered, however small the image."""


def empty_image() -> Record:
    return {
        "slots": [],
        "log": [],
        "next_seq": 1,
        "acked_seq": 0,
        "link_keys": {},
        "put_counts": [],
    }


class _Image:
    """The image being replayed: slots and write counts keyed for in-place updates."""

    def __init__(self, snapshot: Record) -> None:
        self.slots: dict[str, Record] = {s["id"]: s for s in snapshot.get("slots", [])}
        self.log: list[Record] = list(snapshot.get("log", []))
        self.next_seq = int(snapshot.get("next_seq", 1))
        self.acked_seq = int(snapshot.get("acked_seq", 0))
        self.link_keys: dict[str, str] = dict(snapshot.get("link_keys", {}))
        self.put_counts: dict[tuple[str, str], int] = {
            (cid, tag): int(n) for cid, tag, n in snapshot.get("put_counts", [])
        }

    def apply(self, change: Record) -> None:
        op = change["op"]
        if op == "put":
            slot = change["slot"]
            self.slots[slot["id"]] = slot
            self.put_counts[(slot["id"], slot["tag"])] = int(change["count"])
        elif op == "delete":
            self.slots.pop(change["id"], None)
        elif op == "event":
            self.log.append(change["event"])
            self.next_seq = int(change["event"]["seq"]) + 1
        elif op == "ack":
            self.acked_seq = int(change["seq"])
            self.log = [e for e in self.log if int(e["seq"]) > self.acked_seq]
        elif op == "link_keys":
            self.link_keys = dict(change["keys"])
        else:
            raise ValueError(f"unknown flash record {op!r}")

    def as_dict(self) -> Record:
        return {
            "slots": list(self.slots.values()),
            "log": self.log,
            "next_seq": self.next_seq,
            "acked_seq": self.acked_seq,
            "link_keys": self.link_keys,
            "put_counts": [[cid, tag, n] for (cid, tag), n in self.put_counts.items()],
        }


def _replay(raw: bytes) -> tuple[Record | None, int, int]:
    """(image, changes after the snapshot, byte length of the intact records).

    Reading stops at the first record that does not parse: a torn tail, never completely
    written. The intact length counts a record's newline only if the file holds it.
    """
    image: _Image | None = None
    changes = 0
    length = 0
    for line in raw.split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            break
        if not isinstance(record, dict):
            break
        if image is None:
            image = _Image(record["image"] if record.get("op") == "image" else record)
        else:
            image.apply(record)
            changes += 1
        length = min(length + len(line) + 1, len(raw))
    return (None if image is None else image.as_dict()), changes, length


def read_image(path: Path) -> Record | None:
    """The image a lock would load from ``path`` (``None`` if nothing was ever written)."""
    if not path.exists():
        return None
    return _replay(path.read_bytes())[0]


class Flash:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.writes = 0
        """Records written since the lock was made (changes and snapshots)."""
        self._journal = 0
        """Changes appended since the last snapshot."""
        self._has_image = False
        self._repair_at: int | None = None
        """Byte length to cut the file back to before the next append (after a torn tail)."""
        self._memory: bytes | None = None
        """Without a file, the contents are kept here (they survive a reboot, not the process)."""
        self._pending: list[bytes] = []

    def load(self) -> Record | None:
        if self.path is None:
            if self._pending:
                self._memory = (self._memory or b"") + b"".join(self._pending)
                self._pending.clear()
            raw = self._memory or b""
        else:
            raw = self.path.read_bytes() if self.path.exists() else b""
        image, self._journal, length = _replay(raw)
        self._has_image = image is not None
        clean = length == len(raw) and (not raw or raw.endswith(b"\n"))
        self._repair_at = None if clean else length
        return image

    def needs_snapshot(self, image_size: int) -> bool:
        """Whether the next change should be a snapshot instead: nothing written yet, or the
        journal has outgrown the image (``image_size`` records in it)."""
        if self.path is not None and self._has_image and not self.path.exists():
            self._has_image = False  # removed behind the lock's back: start a new file
        return not self._has_image or self._journal >= max(MIN_JOURNAL, image_size)

    def append(self, change: Record) -> None:
        """Write one change (it is durable when this returns)."""
        if not self._has_image:
            self.snapshot(empty_image())
        self.writes += 1
        self._journal += 1
        line = json.dumps(change, separators=(",", ":")).encode() + b"\n"
        if self.path is None:
            self._pending.append(line)
            return
        with open(self.path, "r+b") as fh:
            if self._repair_at is None:
                start = fh.seek(0, os.SEEK_END)
            else:
                start = self._repair_at
                fh.truncate(start)
                fh.seek(start)
                if start and not _ends_with_newline(fh, start):
                    fh.write(b"\n")
                    start += 1
                self._repair_at = None
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                # a full disk: part of the line may be there; cut it off before the next one
                self._repair_at = start
                raise

    def snapshot(self, image: Record) -> None:
        """Replace the whole memory with ``image`` atomically; the journal starts empty."""
        self.writes += 1
        self._journal = 0
        self._has_image = True
        self._repair_at = None
        line = json.dumps({"op": "image", "image": image}, separators=(",", ":")).encode()
        if self.path is None:
            self._memory = line + b"\n"
            self._pending.clear()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _ends_with_newline(fh: BinaryIO, length: int) -> bool:
    fh.seek(length - 1)
    last = fh.read(1)
    fh.seek(length)
    return last == b"\n"
