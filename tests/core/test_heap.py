"""gateway.heap.trim gives freed heap memory back to the system (glibc, as on Debian)."""

from __future__ import annotations

from pathlib import Path

from gateway import heap

BLOCK = 64 * 1024
"""Under glibc's mmap threshold (128 KiB): such blocks come from the heap, not their own map."""
BLOCKS = 640  # 40 MiB


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_trim_returns_freed_heap_pages_to_the_system() -> None:
    blocks = [b"x" * BLOCK for _ in range(BLOCKS)]
    keep = b"y" * BLOCK  # above the freed ones: the heap's top stays in use
    held = _rss_kib()
    del blocks[:]
    freed = _rss_kib()
    assert heap.trim() is True
    trimmed = _rss_kib()
    assert keep[0] == ord("y")
    # Freed blocks below a live one stay resident until trimmed; trimmed, most of them go.
    assert held - trimmed >= BLOCKS * BLOCK // 1024 // 2, (held, freed, trimmed)


def test_trim_twice_is_harmless() -> None:
    assert heap.trim() is True
    assert heap.trim() is True
