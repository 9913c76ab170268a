"""The pinned clock (bench/workday.py), on its own so that any tree's gateway can take it."""

from __future__ import annotations

import datetime as dt
import time

VARIABLE = "EKASE_BENCH_CLOCK"  # "<pinned ISO time>@<real epoch seconds at the pin>"


def install(spec: str) -> None:
    """`gateway.clock.SystemClock` reads the pinned time, running on at the real pace."""
    from gateway.clock import SystemClock

    pinned, real = parse(spec)

    def now(self: SystemClock) -> dt.datetime:
        return (pinned + dt.timedelta(seconds=time.time() - real)).astimezone(dt.UTC)

    SystemClock.now = now  # type: ignore[method-assign]


def parse(spec: str) -> tuple[dt.datetime, float]:
    pinned, real = spec.rsplit("@", 1)
    return dt.datetime.fromisoformat(pinned), float(real)
