"""The garbage collector, set once a process has loaded what it runs with.

What start-up made (modules, classes, compiled statements, the schema) lives as long as
the process: `gc.freeze` leaves it out of every collection. Young objects are collected
less often than CPython's default of 700 allocations: a big file's rows are long-lived
tuples and lists, and at 700 the collector ran a thousand times per 100,000 transactions.
Cycles are still collected.
"""

from __future__ import annotations

import gc

young_threshold = 20_000


def settle() -> None:
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
