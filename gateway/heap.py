"""The garbage collector, set once a process has loaded what it runs with.

What start-up made (modules, classes, compiled statements, the schema) lives as long as
the process: `gc.freeze` leaves it out of every collection. Young objects are collected
less often than CPython's default of 700 allocations: a big file's rows are long-lived
tuples and lists, and at 700 the collector ran a thousand times per 100,000 transactions.
Cycles are still collected.

What a big file's run freed stays with the process: glibc keeps freed memory for the
next allocation and returns to the system only what lies at the top of its heap, so a
worker that read 1,000,000 payments would hold their memory while it idles. A worker
going idle gives it back (`give_back`: `malloc_trim`; cheap, and next to nothing when
nothing was freed).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from functools import cache

young_threshold = 20_000


def settle() -> None:
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


def give_back() -> None:
    """Return the memory the process's allocator holds free to the system, where the C
    library can (glibc's `malloc_trim`; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # the symbols the process has loaded, the C library's among them
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int  # int malloc_trim(size_t)
    found: Callable[[int], int] = trim
    return found
