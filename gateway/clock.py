"""Time, injected: the core never reads the clock; the shell passes `now` in."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock for tests and for `--now` runs: it stands still until moved."""

    def __init__(self, now: dt.datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def set(self, now: dt.datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta
