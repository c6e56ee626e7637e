"""The simulated lock's non-volatile memory: a JSON file written atomically.

A write goes to a temporary file, is fsynced, then renamed over the old one, so a power cut
(SIGKILL of the process hosting the lock) leaves either the old or the new contents, never half.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Flash:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.writes = 0
        self._memory: str | None = None
        """Without a file, the last contents are kept here (they survive a reboot, not the
        process)."""

    def load(self) -> dict[str, Any] | None:
        if self.path is None:
            return None if self._memory is None else dict(json.loads(self._memory))
        if not self.path.exists():
            return None
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.writes += 1
        if self.path is None:
            self._memory = json.dumps(data)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
