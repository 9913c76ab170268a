"""One big file (payroll or ERP run) through `scan --once` on each database, by turns with
the baseline: baseline, SQLite scan, baseline, PostgreSQL scan, baseline, … baseline.

Each scan runs in a fresh copy of its funded installation. This machine's speed drifts
within a minute, so the scans and the baseline take turns and each ratio is of the medians.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import installation
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import Baseline, run_measured
from bench.workloads import BIG_FILE_CLIENTS, DEBTOR, write_sample

EXE = str(Path(sys.executable).with_name("ekase-gateway"))


@dataclass(frozen=True, slots=True)
class Scan:
    seconds: float
    peak_mb: float
    status: str  # the file's group status and payment counts, from its `file.processed` line


@dataclass(slots=True)
class BigFile:
    workload: str
    count: int
    size_mb: float
    baseline: list[float] = field(default_factory=list)
    scans: dict[str, list[Scan]] = field(default_factory=dict)  # by backend label


def scan(template: Installation, backend: Backend, folder: Path, sample: Path) -> Scan:
    """One `scan --once` of `sample` in a fresh copy of `template`."""
    run = installation.copy(template, backend, folder, folder.name)
    try:
        os.link(sample, run.inbox("bench") / sample.name)
        done = run_measured([EXE, "scan", "-c", str(run.config), "--once"])
        if done.returncode != 0:
            raise SystemExit(f"scan failed:\n{done.stdout}\n{done.stderr}")
        return Scan(done.seconds, done.peak_mb, _status(done.stderr))
    finally:
        installation.remove(run, backend)


def _status(log: str) -> str:
    line = next(json.loads(x) for x in log.splitlines() if '"file.processed"' in x)
    counts = ", ".join(f"{n:,} {status}" for status, n in line["counts"].items())
    return f"{line['group_status']} ({counts})"


def measure(
    workload: str, count: int, turns: int, backends: Sequence[Backend], folder: Path
) -> BigFile:
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / f"{workload}-{count}.xml"
    write_sample(workload, count, sample, dt.date.today())
    result = BigFile(workload, count, sample.stat().st_size / 1e6)
    funded = {DEBTOR: str(count * 200)}
    templates = {
        b.label: installation.prepare(
            folder / f"template-{b.key}", b, f"{workload}_template", BIG_FILE_CLIENTS, funded
        )
        for b in backends
    }
    baseline = Baseline()
    result.baseline.append(baseline.seconds(sample))
    for turn in range(1, turns + 1):
        for b in backends:
            run = folder / f"{workload}_{b.key}_{turn}"
            result.scans.setdefault(b.label, []).append(scan(templates[b.label], b, run, sample))
            result.baseline.append(baseline.seconds(sample))
    for b in backends:
        installation.remove(templates[b.label], b)
    sample.unlink()
    return result
