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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim() -> bool:
    """Return the free heap pages to the system; whether the C library could (glibc).

    A ctypes call releases the GIL: run it in a worker thread (``asyncio.to_thread``) and the
    event loop goes on meanwhile."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
