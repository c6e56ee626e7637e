"""A process's peak resident memory, read from /proc (for the benches' RSS figures)."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib(pid: int) -> float:
    """A live process's peak RSS (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
