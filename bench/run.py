"""`make bench`: process one big pain.001.001.03 with `scan --once` and compare it with
bare lxml parse + XSD validation of the same file, measured in the same run.

Prints transactions per second, the ratio (ours / baseline; SPEC §10 target ≤ 3),
and the peak memory of the `scan --once` process and its reading child (target
≤ 300 MB at 100k, ≤ 600 MB at 1M). Ratios, not seconds, are what we compare across
machines. The scan runs `--scans` times (3; each in a fresh copy of the installation)
taking turns with the baseline, and the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from lxml import etree

from gateway import samples
from gateway.environment import open_environment
from gateway.funding import fund
from gateway.inbound import pain001_v03
from gateway.keys import init_signing_key
from gateway.settings import load

REPO = Path(__file__).resolve().parent.parent
DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)


def write_config(folder: Path) -> Path:
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    pub = keys / "bench.pub"
    if not pub.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "bench")], check=True
        )
    authorized = keys / "bench.authorized"
    authorized.write_text(f'from="127.0.0.1" {pub.read_text()}')
    config = folder / "gateway.toml"
    config.write_text(
        f"""
[gateway]
spool_dir = "spool"
database_url = "sqlite:///spool/ledger.sqlite3"
max_transactions = 2000000
max_file_bytes = 1073741824
cutoff_external = "23:59:59"
cutoff_internal = "23:59:59"
eod_time = "23:59:59"

[signing]
key = "signing/gateway.key"
certificate = "signing/gateway.crt"

[[client]]
id = "bench"
name = "Bench institution"
  [[client.account]]
  iban = "{DEBTOR}"
  currency = "EUR"
  [[client.user]]
  name = "bench-erp"
  kind = "system"
  mode = "manage"
  authorized_keys = "keys/bench.authorized"
"""
    )
    return config


def baseline_runs(path: Path, runs: int) -> list[float]:
    """Bare lxml parse + validation against the official schema, as a user would do it."""
    schema = etree.XMLSchema(etree.parse(str(pain001_v03.schema_path())))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        tree = etree.parse(str(path))
        valid = schema.validate(tree)
        times.append(time.perf_counter() - started)
        assert valid, schema.error_log
        del tree
    return times


def _kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB; 0 once the process has gone."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(c) for c in text.split()]


def run_measured(command: list[str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run `command`; its wall time, and the peak memory of it and the reading child it
    forks.

    The time runs from just before the start to the moment `wait` returns, which is
    when the process has exited (not the next tick of a polling loop). Meanwhile a
    thread reads, every 50 ms, the high-water mark (VmHWM) of the scan process and of
    each child; the peak is the highest sum of those marks, so a peak between two
    samples is not missed, and peaks of the two processes at different moments are
    added (the figure errs high, as do pages the forked child shares with its parent).
    Sampling rarely keeps the sampler from slowing what it measures on 2 cores.
    (`getrusage(RUSAGE_CHILDREN)` would count the memory this benchmark process held
    when it forked — the baseline's parse tree.)
    """
    marks: dict[int, int] = {}
    done = threading.Event()

    def sample(pid: int) -> None:
        while not done.is_set():
            for each in (pid, *_children(pid)):
                marks[each] = max(marks.get(each, 0), _kib(each, "VmHWM"))
            done.wait(0.05)

    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    peak_kib = marks.get(proc.pid, 0) + sum(v for pid, v in marks.items() if pid != proc.pid)
    return subprocess.CompletedProcess(command, proc.returncode, out, err), elapsed, peak_kib / 1024


def _scan(template: Path, run: Path, sample: Path) -> tuple[float, float, dict[str, object]]:
    """One `scan --once` of `sample` in a fresh copy of the prepared installation:
    seconds, peak memory (MB) and its `file.processed` log line."""
    shutil.copytree(template, run)
    os.link(sample, run / "spool" / "clients" / "bench" / "in" / sample.name)
    exe = Path(sys.executable).with_name("ekase-gateway")
    proc, elapsed, peak_mb = run_measured(
        [str(exe), "scan", "-c", str(run / "gateway.toml"), "--once"]
    )
    if proc.returncode != 0:
        raise SystemExit(f"scan failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(json.loads(x) for x in proc.stderr.splitlines() if '"file.processed"' in x)
    return elapsed, peak_mb, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--scans", type=int, default=3, help="scans of the file (median)")
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    count: int = args.transactions
    folder: Path = args.dir / f"run-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    template = folder / "template"
    template.mkdir(parents=True)
    config = write_config(template)
    settings = load(config)
    init_signing_key(
        settings.signing.key, settings.signing.certificate, now=dt.datetime.now(dt.UTC)
    )
    env = open_environment(settings)
    fund(env, DEBTOR, str(count * 200), key="bench")
    env.close()

    sample = folder / f"pain001-{count}.xml"
    started = time.perf_counter()
    with open(sample, "wb") as out:
        samples.write(
            samples.payroll(DEBTOR, count, execution_date=dt.date.today(), msg_id=f"BENCH-{count}"),
            out,
        )
    generated = time.perf_counter() - started
    size_mb = sample.stat().st_size / 1e6
    print(f"generated {count} transactions, {size_mb:.1f} MB, in {generated:.1f} s")

    # This machine's speed drifts by tens of percent within a minute, so the scans and
    # the baseline take turns — baseline, scan, baseline, scan, …, baseline — each scan
    # in a fresh copy of the installation, and the ratio is of the two medians.
    runs: list[float] = [] if args.skip_baseline else baseline_runs(sample, 1)
    scans: list[tuple[float, float, dict[str, object]]] = []
    for n in range(max(1, args.scans)):
        scans.append(_scan(template, folder / f"scan-{n + 1}", sample))
        if not args.skip_baseline:
            runs += baseline_runs(sample, 1)
    times = [elapsed for elapsed, _, _ in scans]
    elapsed = statistics.median(times)
    line = scans[0][2]
    print(
        f"scan --once: {elapsed:.2f} s (median of {', '.join(f'{t:.2f}' for t in times)}), "
        f"{count / elapsed:,.0f} transactions/s, status {line['group_status']} {line['counts']}"
    )
    if not args.skip_baseline:
        base = statistics.median(runs)
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"baseline lxml parse + XSD validation: {base:.2f} s (median of {shown})")
        print(f"ratio to baseline: {elapsed / base:.2f} (target <= 3)")
    peak_mb = max(peak for _, peak, _ in scans)
    print(f"peak RSS of scan --once and its reading child: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
