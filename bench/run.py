"""`make bench`: every SPEC §10 workload on SQLite and on PostgreSQL, side by side.

- payroll and ERP run: one file of `--transactions` payments through `scan --once`, by
  turns with bare lxml parse + XSD validation of the same file (bench/bigfiles.py): the
  ratio of the medians, payments per second, and the peak memory of the scan and its
  reading child;
- erp-coded: the ERP run with two budget codes per payment (SPEC §12) against the same
  run without, by turns: the ratio of the medians (issue 17: at most 1.10);
- small files: 1,000 files of 20 payments from 50 clients arriving at 100 a second into
  the running daemon (bench/smallfiles.py): files per second, median and 99th percentile
  of the time from a file's arrival in in/ to its answer in out/;
- busy day: 50 small files from an account with a daily limit through `scan --once`
  after a 100,000-payment ERP run from it executed that day, against an empty day
  (bench/busyday.py): a file's cost must not grow with what the client's day holds;
- signed: a payroll of 10,000 payments signed by two signatories beside the same file
  unsigned (bench/signed.py, SPEC §11);
- mock-bank: 10,000 payments between two treasury accounts against mock-bank 0.9
  (bench/mockbank.py);
- erp-fx: the ERP run with a third of its payments converted (SPEC §13) against the
  same run all in EUR, by turns (bench/fxrun.py).

    .venv/bin/python -m bench.run [--transactions 100000] [--turns 3]
        [--workloads payroll,erp,erp-coded,erp-fx,small-files,busy-day,signed,mock-bank]
        [--databases sqlite,postgresql]
        [--arrivals drop|sftp]
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import (
    arrivals,
    bigfiles,
    busyday,
    fxrun,
    mockbank,
    report,
    signed,
    smallfiles,
    workday,
)
from bench.databases import Backend, backend

REPO = Path(__file__).resolve().parent.parent
ALL_WORKLOADS = (
    "payroll", "erp", "erp-coded", "erp-fx", "small-files", "busy-day", "signed", "mock-bank",
)
signed_payments = 10_000
# The 10,000-payment workloads run for under a second, where the machine's swings weigh
# most against the few percent measured: they take this many times the turns.
short_turns_factor = 3


def header() -> str:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty=+changes"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"ekase-gateway {commit or '(no git)'}, {now}; {os.cpu_count()} cores, "
        f"load average {load} at the start"
    )


def show(lines: list[str]) -> None:
    print("\n".join(["", *lines]), flush=True)


def run(args: argparse.Namespace, backends: list[Backend]) -> None:
    folder: Path = args.dir
    for workload in ("payroll", "erp"):
        if workload in args.workloads:
            result = bigfiles.measure(
                workload, args.transactions, args.turns, backends, folder / workload
            )
            show(report.big_file(result))
    if "erp-coded" in args.workloads:
        show(report.coded_cost(
            bigfiles.measure_codes(args.transactions, args.turns, backends, folder / "coded")
        ))  # fmt: skip
    if "small-files" in args.workloads:
        show(report.small_files({
            b.label: smallfiles.measure(b, folder / "small-files", args.arrivals)
            for b in backends
        }))  # fmt: skip
    if "busy-day" in args.workloads:
        day = busyday.measure(args.transactions, args.turns, backends, folder / "busy-day")
        show(busyday.report(day))
    if "signed" in args.workloads:
        result = signed.measure(
            signed_payments, args.turns * short_turns_factor, backends, folder / "signed"
        )
        show(signed.report(result))
    if "mock-bank" in args.workloads:
        try:
            comparison: mockbank.Comparison | str = mockbank.measure(
                args.turns * short_turns_factor, folder / "mock-bank"
            )
        except mockbank.Unavailable as exc:
            comparison = str(exc)
        show(report.mock_bank(comparison))
    if "erp-fx" in args.workloads:
        converted = fxrun.measure(args.transactions, args.turns, backends, folder / "erp-fx")
        show(fxrun.report(converted))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--arrivals", choices=arrivals.ARRIVALS, default="drop",
        help="how the small files arrive (bench/arrivals.py)",
    )  # fmt: skip
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.workloads = args.workloads.split(",")
    unknown = set(args.workloads) - set(ALL_WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}")
    args.turns = max(1, args.turns)
    return args


def main() -> int:
    args = parse()
    # The processes it times load the project as a wheel's install would, byte-compiled
    # (`make compile`): where PYTHONDONTWRITEBYTECODE is set, each would compile it anew.
    for package in ("gateway", "ledger"):
        compileall.compile_dir(REPO / package, quiet=1)
    day = workday.begin()
    backends = [backend(key) for key in args.databases.split(",")]
    print(header(), flush=True)
    print(f"the bench's clock: {day:%A} {day}, 10:00 in Riga (bench/workday.py)", flush=True)
    try:
        run(args, backends)
    finally:
        for each in backends:
            each.close()
    shutil.rmtree(args.dir, ignore_errors=True)  # kept after a failure, to be looked at
    return 0


if __name__ == "__main__":
    sys.exit(main())
