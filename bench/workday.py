"""The bench's working day: every workload runs on a business morning, whatever the hour.

The gateway executes a payment only on a Latvian business day before its cut-off; on a
weekend, a holiday or at night it answers `PDNG` and books nothing. A bench that read the
real clock would measure that other work whenever it happened to run then. So
`begin()` pins the clock of the bench and of every process it starts — scans, the daemon
and its spawned workers — to 10:00 in Riga of the first business day on or after today,
and lets it run on from there at the real pace.

The pin goes through `gateway.clock.SystemClock`, the one place the gateway reads the
time: in this process directly, in the others by `workday_site/sitecustomize.py`, which
Python imports at start-up from `PYTHONPATH`. The product has no such switch.

The crash tests start their scans the same way (`pinned`), so that what they kill is
always booking payments, whatever day CI runs on.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

SITE = Path(__file__).resolve().parent / "workday_site"
sys.path.insert(0, str(SITE))

from ekase_bench_clock import VARIABLE, install, parse  # noqa: E402

from gateway import logs  # noqa: E402


def morning(zone: str = "Europe/Riga") -> dt.datetime:
    """10:00 in Riga of the first business day on or after today."""
    from zoneinfo import ZoneInfo

    from ledger.calendar import business_day_on_or_after

    local = ZoneInfo(zone)
    day = business_day_on_or_after(dt.datetime.now(local).date())
    return dt.datetime.combine(day, dt.time(10, 0), local)


def pinned(moment: dt.datetime) -> dict[str, str]:
    """This process's environment for a process whose clock is to read `moment` now and
    run on from there: with the pin, and `PYTHONPATH` with the start-up hook in front."""
    return {
        **os.environ,
        VARIABLE: f"{moment.isoformat()}@{time.time():.6f}",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(SITE), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


def begin() -> dt.date:
    """The bench's process begins: the clock pinned here and in every process started
    from now on (`morning`), and what the gateway's functions it calls itself log (the
    fundings of an installation it prepares) kept off its stdout, which is the report.
    The day it is."""
    moment = morning()
    os.environ.update(pinned(moment))
    install(os.environ[VARIABLE])
    logs.configure(stream=open(os.devnull, "w"))  # noqa: SIM115 (the logger keeps it open)
    return moment.date()


def wall_of(moment: dt.datetime) -> float:
    """When, in epoch seconds on the wall clock, the pinned clock read `moment` (a
    receipt's `received_at`, say); `moment` itself where nothing is pinned."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return moment.timestamp()
    start, real = parse(spec)
    return moment.timestamp() - (start.timestamp() - real)


def today() -> dt.date:
    """The bench's day: the pinned one once `begin()` ran, else the calendar's."""
    spec = os.environ.get(VARIABLE)
    return parse(spec)[0].date() if spec else dt.date.today()
