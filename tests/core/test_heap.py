"""gateway.heap.trim gives freed heap memory back to the system (glibc, as on Debian)."""

from __future__ import annotations

import subprocess
import sys
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


ARENAS_CHILD = """
import ctypes, sys, threading
from gateway import heap
if sys.argv[1] == "one":
    assert heap.one_arena()
def work():
    blocks = [b"x" * 4096 for _ in range(200)]
    del blocks
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
fp = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
"""


def _arenas(tmp_path: Path, mode: str) -> int:
    out = tmp_path / f"{mode}.xml"
    subprocess.run([sys.executable, "-c", ARENAS_CHILD, mode, str(out)], check=True, timeout=60)
    return out.read_text().count("<heap nr=")


def test_one_arena_keeps_threads_allocations_in_the_main_arena(tmp_path: Path) -> None:
    # glibc gives each new thread an arena of its own (the reference), unless limited.
    assert _arenas(tmp_path, "default") > 1
    assert _arenas(tmp_path, "one") == 1
