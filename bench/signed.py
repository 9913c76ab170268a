"""A payroll of `count` payments signed by two signatories (SPEC §11), beside the same file
unsigned, through `scan --once` on each database, by turns.

- unsigned: the file on an account that needs no signature, one `scan --once`;
- signed: the same file on a two-level account. Its arrival (read through, file-level
  checks, PDNG answer: no decide, nothing booked) is one `scan --once`; the completion —
  both signatories' containers (`gateway sign`'s code), each read, verified, matched and
  recorded, the last executing the batch — another. The target (issue 16): the
  completion, which carries the whole execution, takes at most 10% longer than the
  unsigned run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import installation, workday
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import run_measured
from bench.workloads import BIG_FILE_CLIENTS, DEBTOR, write_sample
from gateway import testpki
from gateway.sign_command import sign_container

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
overhead_max = 0.10


@dataclass(slots=True)
class Signed:
    count: int
    unsigned: dict[str, list[float]] = field(default_factory=dict)  # by backend label
    arrival: dict[str, list[float]] = field(default_factory=dict)
    completion: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)


def _scan(run: Installation) -> tuple[float, list[dict[str, object]]]:
    done = run_measured([EXE, "scan", "-c", str(run.config), "--once"])
    if done.returncode != 0:
        raise SystemExit(f"scan failed:\n{done.stdout}\n{done.stderr}")
    lines = [json.loads(x) for x in done.stderr.splitlines() if '"file.processed"' in x]
    return done.seconds, lines


def _require_signatures(run: Installation, pki: Path) -> None:
    """The bench client's account needs a first and a second signature."""
    config = run.config
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == f'iban = "{DEBTOR}"')
    lines.insert(at + 1, "authorisation = 2")
    end = next((i for i in range(at, len(lines)) if lines[i].strip() == "[[client]]"), len(lines))
    card = []
    for name, right in (("First", "first"), ("Second", "second")):
        card += ["[[client.signatory]]", f'name = "{name}"',
                 f'certificate = "{pki / "signatories" / f"{right}.pem"}"', f'right = "{right}"']
    lines[end:end] = card
    lines.insert(lines.index("[signing]") + 1, f'signatory_ca = ["{pki / "ca.pem"}"]')
    config.write_text("\n".join(lines) + "\n")


def _turn(
    template: Installation, backend: Backend, folder: Path, sample: Path,
    containers: Sequence[Path], pki: Path, result: Signed,
) -> None:
    label = backend.label
    run = installation.copy(template, backend, folder / "unsigned", f"{folder.name}_u")
    try:
        os.link(sample, run.inbox("bench") / sample.name)
        seconds, _ = _scan(run)
        result.unsigned.setdefault(label, []).append(seconds)
    finally:
        installation.remove(run, backend)
    run = installation.copy(template, backend, folder / "signed", f"{folder.name}_s")
    try:
        _require_signatures(run, pki)
        os.link(sample, run.inbox("bench") / sample.name)
        seconds, _ = _scan(run)
        result.arrival.setdefault(label, []).append(seconds)
        for container in containers:
            os.link(container, run.inbox("bench") / container.name)
        seconds, lines = _scan(run)
        result.completion.setdefault(label, []).append(seconds)
        result.statuses[label] = ", ".join(str(line["group_status"]) for line in lines)
    finally:
        installation.remove(run, backend)


def measure(count: int, turns: int, backends: Sequence[Backend], folder: Path) -> Signed:
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / f"signed-{count}.xml"
    write_sample("payroll", count, sample, workday.today())
    now = dt.datetime.now(dt.UTC)
    pki = testpki.make_pki(now)
    files = testpki.write_pki(pki, folder / "pki")
    data = sample.read_bytes()
    containers = []
    for stem in ("first", "second"):
        issued = getattr(pki, stem)
        path = folder / f"signed-{count}.{stem}.asice"
        path.write_bytes(sign_container(sample.name, data, issued.key, issued.cert, now))
        containers.append(path)
    result = Signed(count)
    funded = {DEBTOR: str(count * 200)}
    for b in backends:
        template = installation.prepare(
            folder / f"template-{b.key}", b, "signed_template", BIG_FILE_CLIENTS, funded
        )
        try:
            for turn in range(1, turns + 1):
                _turn(template, b, folder / f"{b.key}_{turn}", sample, containers,
                      files.ca.parent, result)  # fmt: skip
        finally:
            installation.remove(template, b)
    shutil.rmtree(folder / "pki", ignore_errors=True)
    return result


def report(result: Signed) -> list[str]:
    lines = [f"signed payroll: {result.count:,} payments, signed by a first and a second "
             "signatory (two containers), beside the same file unsigned (medians)"]  # fmt: skip
    for label, unsigned in result.unsigned.items():
        base = statistics.median(unsigned)
        done = statistics.median(result.completion[label])
        arrival = statistics.median(result.arrival[label])
        overhead = done / base - 1
        verdict = "met" if overhead <= overhead_max else "MISSED"
        lines.append(
            f"  {label}: unsigned {base:.2f} s; signed: arrival (waits, PDNG) {arrival:.2f} s, "
            f"completion (two signatures, execution) {done:.2f} s = {overhead:+.1%} "
            f"(target ≤ +{overhead_max:.0%}: {verdict}); answers {result.statuses[label]}"
        )
    return lines
