"""One big file (payroll or ERP run) through `scan --once` on each database, by turns with
the baseline: baseline, SQLite scan, baseline, PostgreSQL scan, baseline, … baseline.

Each scan runs in a fresh copy of its funded installation. This machine's speed drifts
within a minute, so the scans and the baseline take turns and each ratio is of the medians.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import installation, workday
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import Baseline, run_measured
from bench.workloads import DEBTOR, clients_for, write_sample

EXE = str(Path(sys.executable).with_name("ekase-gateway"))


@dataclass(frozen=True, slots=True)
class Scan:
    seconds: float
    peak_mb: float
    status: str  # the file's group status and payment counts, from its `file.processed` line
    cpu_seconds: float = 0.0  # of the scan and its reading child


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
        return Scan(done.seconds, done.peak_mb, _status(done.stderr), done.cpu_seconds)
    finally:
        installation.remove(run, backend)


def _status(log: str) -> str:
    line = next((json.loads(x) for x in log.splitlines() if '"file.processed"' in x), None)
    if line is None:
        raise SystemExit(f"the scan processed no file:\n{log[-4000:]}")
    counts = ", ".join(f"{n:,} {status}" for status, n in line["counts"].items())
    return f"{line['group_status']} ({counts})"


def measure(
    workload: str, count: int, turns: int, backends: Sequence[Backend], folder: Path
) -> BigFile:
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / f"{workload}-{count}.xml"
    write_sample(workload, count, sample, workday.today())
    result = BigFile(workload, count, sample.stat().st_size / 1e6)
    funded = {DEBTOR: str(count * 200)}
    templates = {
        b.label: installation.prepare(
            folder / f"template-{b.key}",
            b,
            f"{workload.replace('-', '_')}_template",
            clients_for(workload),
            funded,
        )
        for b in backends
    }
    baseline = Baseline()
    result.baseline.append(baseline.seconds(sample))
    for turn in range(1, turns + 1):
        for b in backends:
            run = folder / f"{workload.replace('-', '_')}_{b.key}_{turn}"
            result.scans.setdefault(b.label, []).append(scan(templates[b.label], b, run, sample))
            result.baseline.append(baseline.seconds(sample))
    for b in backends:
        installation.remove(templates[b.label], b)
    sample.unlink()
    return result


@dataclass(slots=True)
class Coded:
    count: int
    plain_mb: float
    coded_mb: float
    # by backend label: (without codes, with codes), each turn's scan
    scans: dict[str, tuple[list[Scan], list[Scan]]] = field(default_factory=dict)
    # CPU seconds of bare lxml parse + XSD of each file (without, with codes), after each
    # scan of it: the part of the cost that comes with the bigger file whatever we do
    parse_cpu: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


def measure_codes(count: int, turns: int, backends: Sequence[Backend], folder: Path) -> Coded:
    """The erp run without codes and with two codes per payment (from a budget account),
    by turns on each database: erp, erp-coded, erp, erp-coded, …"""
    folder.mkdir(parents=True, exist_ok=True)
    samples = {w: folder / f"{w}-{count}.xml" for w in ("erp", "erp-coded")}
    for workload, path in samples.items():
        write_sample(workload, count, path, workday.today())
    result = Coded(count, *(p.stat().st_size / 1e6 for p in samples.values()))
    funded = {DEBTOR: str(count * 200)}
    baseline = Baseline()
    for b in backends:
        templates = {
            w: installation.prepare(
                folder / f"template-{w}-{b.key}", b, f"{w.replace('-', '_')}_template",
                clients_for(w), funded,
            )
            for w in samples
        }  # fmt: skip
        plain: list[Scan] = []
        coded: list[Scan] = []
        for turn in range(1, turns + 1):
            for w, times, parses in zip(samples, (plain, coded), result.parse_cpu, strict=True):
                run = folder / f"{w.replace('-', '_')}_{b.key}_{turn}"
                done = scan(templates[w], b, run, samples[w])
                assert "RJCT" not in done.status, (w, done.status)
                times.append(done)
                parses.append(baseline.measured(samples[w])[1])
        result.scans[b.label] = (plain, coded)
        for template in templates.values():
            installation.remove(template, b)
    for path in samples.values():
        path.unlink()
    return result
