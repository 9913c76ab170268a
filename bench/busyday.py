"""A client's busy day: what one more file costs once the day already holds a big run.

A client whose account has a daily limit sends `files_count` small files (an ERP run of
20 payments each) through `scan --once` twice by turns: after an ERP run of
`--transactions` payments, each booked on its own, was executed that same day, and on
an empty day. What a file reads of the client's day (the large-payment-day gate, SPEC
§14; AM05's earlier payments; the day's debits for the limit) must cost by the file,
not by the payments the day holds: the ratio of the medians is ≈ 1.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import installation, workday
from bench.bigfiles import EXE
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import median_of, run_measured
from bench.report import verdict
from bench.workloads import DEBTOR, LIMITED_CLIENTS, PEERS, write_sample
from gateway import samples

files_count = 50
payments_per_file = 20
ratio_max = 1.10  # a file's cost does not grow with the day


@dataclass(slots=True)
class BusyDay:
    day_run: int  # payments of the big run booked before
    files: int
    # by backend label: (on an empty day, after the big run), each turn's scan in seconds
    scans: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


def _scan(template: Installation, backend: Backend, folder: Path, files: Sequence[Path]) -> float:
    """`scan --once` of `files` in a fresh copy of `template`; every file answered."""
    run = installation.copy(template, backend, folder, folder.name)
    try:
        for path in files:
            os.link(path, run.inbox("bench") / path.name)
        done = run_measured([EXE, "scan", "-c", str(run.config), "--once"])
        answered = done.stderr.count('"file.processed"')
        if done.returncode != 0 or answered < len(files):
            raise SystemExit(f"scan failed ({answered} answered):\n{done.stderr[-4000:]}")
        return done.seconds
    finally:
        installation.remove(run, backend)


def _files(folder: Path, day: dt.date) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for k in range(files_count):
        batch = samples.erp_run(
            DEBTOR, payments_per_file, PEERS, msg_id=f"DAY-{k:03d}", execution_date=day,
            first=k * payments_per_file,
        )  # fmt: skip
        path = folder / f"DAY-{k:03d}.xml"
        path.write_bytes(samples.to_bytes(batch))
        made.append(path)
    return made


def measure(count: int, turns: int, backends: Sequence[Backend], folder: Path) -> BusyDay:
    """On each database: a funded installation (the empty day) and a copy of it that has
    booked the big run (the busy day); then the small files on each, by turns."""
    day = workday.today()
    files = _files(folder / "files", day)
    big = folder / f"erp-{count}.xml"
    write_sample("erp", count, big, day)
    result = BusyDay(count, len(files))
    funded = {DEBTOR: str(count * 200)}
    for b in backends:
        empty = installation.prepare(
            folder / f"empty-{b.key}", b, "busy_day_empty", LIMITED_CLIENTS, funded
        )
        busy = installation.copy(empty, b, folder / f"busy-{b.key}", "busy_day_busy")
        os.link(big, busy.inbox("bench") / big.name)
        booked = run_measured([EXE, "scan", "-c", str(busy.config), "--once"])
        if booked.returncode != 0 or '"file.processed"' not in booked.stderr:
            raise SystemExit(f"the big run's scan failed:\n{booked.stderr[-4000:]}")
        quiet: list[float] = []
        loaded: list[float] = []
        for turn in range(1, turns + 1):
            for name, template, times in (("empty", empty, quiet), ("busy", busy, loaded)):
                times.append(_scan(template, b, folder / f"day_{name}_{b.key}_{turn}", files))
        result.scans[b.label] = (quiet, loaded)
        for template in (busy, empty):
            installation.remove(template, b)
    big.unlink()
    return result


def report(result: BusyDay) -> list[str]:
    lines = [
        f"busy day: {result.files} files of {payments_per_file} payments from one account "
        f"with a daily limit through scan --once, after a {result.day_run:,}-payment ERP "
        f"run executed that day, against an empty day (target: ratio ≤ {ratio_max:.2f})"
    ]
    for label, (quiet, loaded) in result.scans.items():
        ratio = statistics.median(loaded) / statistics.median(quiet)
        lines.append(
            f"  {label}: {median_of(loaded)} after the run, {median_of(quiet)} on an "
            f"empty day; ratio {ratio:.2f} ({verdict(ratio <= ratio_max)})"
        )
    return lines
