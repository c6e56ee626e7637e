"""Give the C heap's free pages back to the system after a big build.

A full sync of 50,000 grants parses pages, stages rows and builds a view: tens of megabytes of
objects, most of them freed once the sync is committed. CPython hands the small ones back to
its own arenas, but the larger blocks (page bodies, dicts' tables, lists) come from glibc's
``malloc``, which keeps freed memory in its heap for reuse rather than returning it: the
process stays that much larger until the heap happens to be reused (measured on the 50,000-grant
bench: 181 MiB resident after the first full sync, 151 MiB after :func:`trim`; the pushes to
the locks that follow then grow from there instead of from the top).

``malloc_trim(0)`` returns every whole free page of every glibc arena (``madvise``
``MADV_DONTNEED``); nothing is moved and no object changes. Where the C library has no
``malloc_trim`` (musl, macOS), :func:`trim` does nothing.

:func:`one_arena` keeps every thread's ``malloc`` in one arena: by default glibc gives threads
that find the main arena busy arenas of their own (up to 8 per core), each holding its own
freed memory; the gateway's worker threads (SQLite writes, sync staging) would each keep a
heap that the main thread cannot reuse (measured on the 50,000-grant bench: peak RSS 192-195
MiB with the default, 189 MiB with one arena, in three runs each; the sync's and the
resync's CPU the same within noise: the GIL serialises the Python side anyway, and glibc's
per-thread caches serve most small allocations without the arena's lock).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import cast


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library as linked into this process (``dlopen(NULL)``: no search, no
    subprocess)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    fn = getattr(_libc(), "malloc_trim", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc's ``malloc.h``)."""


def one_arena() -> bool:
    """Keep every thread's allocations in one glibc arena (from now on: arenas already made
    stay); whether the C library could (glibc). Call it at start, before threads are made."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))


def trim() -> bool:
    """Return the free heap pages to the system; whether the C library could (glibc).

    A ctypes call releases the GIL: run it in a worker thread (``asyncio.to_thread``) and the
    event loop goes on meanwhile."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
