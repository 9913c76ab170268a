"""Time, injected: the core never reads the clock; the shell passes `now` in.

A clock tells two times that are one in production: `now()`, the treasury's time that
decides business days, cut-offs and timestamps, and `wall()`, the time the filesystem
stamps files with, against which a file's age (an upload settling, a temporary left
behind) is measured. A test's fixed clock moves both; the bench pins only `now()`
(bench/workday.py), and the files it writes still age as they do."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch on the clock that stamps files' modification times."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wall(self) -> float:
        return time.time()


class FixedClock:
    """A clock for tests: it stands still until moved."""

    def __init__(self, now: dt.datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def wall(self) -> float:
        return self._now.timestamp()

    def set(self, now: dt.datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta


def on_clock(clock: Clock, stamped: float) -> dt.datetime:
    """A file's modification time (`wall()`'s) as the treasury's time (`now()`'s), in UTC:
    now, less the file's age. In production the two clocks are one and this is the stamp."""
    age = dt.timedelta(seconds=max(0.0, clock.wall() - stamped))
    return (clock.now() - age).astimezone(dt.UTC)
