"""Paired runs: the same file through `scan --once` of two source trees, taking turns.

    .venv/bin/python -m bench.paired --other /path/to/other/checkout --workload erp

This machine's speed drifts by tens of percent within a minute, so a change is judged
by runs of the two trees side by side: A, B, A, B, … each in a fresh copy of its own
funded installation (each tree makes its own, with its own schema), on one file made
here. It prints every pair and how many of them each tree won.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import workday
from bench.workloads import DEBTOR, WORKLOADS, write_config, write_sample

REPO = Path(__file__).resolve().parent.parent


def prepare(tree: Path, folder: Path) -> Path:
    """A funded installation made by `tree`'s own commands."""
    exe = str(tree / ".venv" / "bin" / "ekase-gateway")
    config = write_config(folder)
    for command in (["keys", "init"], ["db", "upgrade"]):
        subprocess.run([exe, *command, "-c", str(config)], check=True, capture_output=True)
    subprocess.run(
        [exe, "ledger", "fund", "-c", str(config), "--iban", DEBTOR, "--amount", "1000000000"],
        check=True,
        capture_output=True,
    )
    return folder


def scan(tree: Path, template: Path, run: Path, sample: Path) -> float:
    shutil.copytree(template, run)
    (run / "spool" / "clients" / "bench" / "in" / sample.name).hardlink_to(sample)
    exe = str(tree / ".venv" / "bin" / "ekase-gateway")
    started = time.perf_counter()
    done = subprocess.run([exe, "scan", "-c", str(run / "gateway.toml"), "--once"],
                          capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "processed 1 file" not in done.stdout:
        raise SystemExit(f"{tree}: scan failed\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(run)
    return elapsed


def main() -> int:
    workday.begin()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", type=Path, required=True, help="the tree to compare with")
    parser.add_argument("--workload", choices=WORKLOADS, default="payroll")
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out" / "paired")
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    trees = {"this": REPO, "other": args.other.resolve()}
    templates = {name: prepare(tree, args.dir / f"template-{name}") for name, tree in trees.items()}
    sample = args.dir / f"{args.workload}-{args.transactions}.xml"
    write_sample(args.workload, args.transactions, sample, workday.today())
    times: dict[str, list[float]] = {"this": [], "other": []}
    for n in range(args.pairs):
        order = ("this", "other") if n % 2 == 0 else ("other", "this")
        for name in order:
            run = args.dir / f"run-{name}"
            times[name].append(scan(trees[name], templates[name], run, sample))
        print(f"pair {n + 1}: this {times['this'][-1]:.2f} s, other {times['other'][-1]:.2f} s")
    wins = sum(a < b for a, b in zip(times["this"], times["other"], strict=True))
    this, other = statistics.median(times["this"]), statistics.median(times["other"])
    print(
        f"{args.workload}, {args.transactions} payments, {args.pairs} pairs: this "
        f"{this:.2f} s, other {other:.2f} s (medians; {this / other - 1:+.1%}); this faster in "
        f"{wins} of {args.pairs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
