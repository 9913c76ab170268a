"""Peak memory of one call, for the streaming tests of the outbound writers.

tracemalloc sees Python allocations only (libxml2 allocates outside it) and slows
a 200,000-transaction run threefold. So where Linux lets us reset the resident-set
high-water mark (/proc/self/clear_refs) the real peak is measured; tracemalloc is
the fallback elsewhere.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_rss_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_growth(call: Callable[[], object]) -> int:
    """How far memory rose above its level at the start while `call` ran, in bytes.

    The real resident set where Linux lets us reset its high-water mark (cheap, and
    it counts libxml2's buffers); otherwise tracemalloc's peak of Python allocations.
    """
    if _reset_rss_peak():
        before = _status_kib("VmRSS")
        call()
        return (_status_kib("VmHWM") - before) * 1024
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
