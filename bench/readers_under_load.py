"""Outside check (SPEC §9): read-only commands answer within a second under load.

Builds an installation as `make bench` does (bench/workloads.py's configuration and
the sample generator), answers one small file first so that there is a sealed answer to verify,
then has a 200,000-payment file processed — by `scan --once`, or (`--through daemon`) by
the running daemon (`run`, its workers) — and, while it is, runs `status --json`,
`ledger balance` and `verify` one after another, each a new process as an operator
types it, and times each from its start to its exit. A command counts only if the file
was still being processed when it ended.

Prints, per command, how often it ran, the median and the maximum; and what `status`
said about the file (payments done of total) each time. Exits 1 if a maximum is over
the second (or nothing ran while the scan did).

    .venv/bin/python -m bench.readers_under_load [--transactions 200000] [--through daemon]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import workday
from bench.workloads import DEBTOR, write_config
from gateway import samples
from gateway.clock import SystemClock
from gateway.environment import open_environment
from gateway.funding import fund
from gateway.keys import init_host_key, init_signing_key
from gateway.settings import load

REPO = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).with_name("ekase-gateway"))
answer_seconds_max = 1.0


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed ({done.returncode}): {done.stderr}")
    return elapsed, done


def progress_of(status_json: str) -> str:
    files = json.loads(status_json)["in_progress"]
    if not files:
        return "no file in progress"
    f = files[0]
    if f["done"] is None:
        return f"{f['file']}: {f['state']}"
    return f"{f['file']}: {f['done']:,} of {f['total']:,}"


class Processing:
    """The big file being processed: by `scan --once` until it exits, or by the daemon
    (started once the file waits) until the file's answer is in out/."""

    def __init__(self, through: str, config: Path, out: Path) -> None:
        self.daemon = through == "daemon"
        self.what = "the daemon (run)" if self.daemon else "scan --once"
        self.out = out
        command = ["run"] if self.daemon else ["scan", "--once"]
        self.process = subprocess.Popen(
            [EXE, *command, "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def running(self) -> bool:
        if self.process.poll() is not None:
            if self.daemon or self.process.returncode != 0:
                raise SystemExit(f"{self.what} ended ({self.process.returncode})")
            return False
        # out/ held the small file's answer: a second is the big file's
        return not (self.daemon and len(list(self.out.glob("*.xml"))) > 1)

    def stop(self) -> None:
        if self.daemon and self.process.poll() is None:
            self.process.terminate()
        self.process.wait(120)


def main() -> int:
    workday.begin()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--through", choices=("scan", "daemon"), default="scan")
    args = parser.parse_args()
    count: int = args.transactions
    folder: Path = args.dir / f"readers-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = write_config(folder)
    settings = load(config)
    init_signing_key(settings.signing.key, settings.signing.certificate,
                     now=SystemClock().now())
    init_host_key(settings.sftp.host_key)  # (the daemon serves SFTP)
    env = open_environment(settings)
    fund(env, DEBTOR, str(count * 200), key="bench")
    env.close()

    inbox = settings.spool_dir / "clients" / "bench" / "in"
    today = workday.today()
    with open(inbox / "small.xml", "wb") as out:
        samples.write(samples.payroll(DEBTOR, 10, execution_date=today, msg_id="SMALL-1"), out)
    timed([EXE, "scan", "-c", str(config), "--once"])
    answer = next((settings.spool_dir / "clients" / "bench" / "out").glob("*.xml"))

    big = folder / f"pain001-{count}.xml"
    with open(big, "wb") as out:
        samples.write(samples.payroll(DEBTOR, count, execution_date=today, msg_id="BIG-1"), out)
    big.rename(inbox / big.name)

    commands = {
        "status": [EXE, "status", "-c", str(config), "--json"],
        "ledger balance": [EXE, "ledger", "balance", "-c", str(config), "--iban", DEBTOR],
        "verify": [EXE, "verify", str(answer), "--cert", str(settings.signing.certificate)],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    seen: list[str] = []
    answers = settings.spool_dir / "clients" / "bench" / "out"
    processing = Processing(args.through, config, answers)
    started = time.perf_counter()
    try:
        while processing.running():
            for name, command in commands.items():
                elapsed, done = timed(command)
                if not processing.running():
                    break
                seconds[name].append(elapsed)
                if name == "status":
                    at = time.perf_counter() - started
                    seen.append(f"{at:5.1f} s  {progress_of(done.stdout)}")
    finally:
        processing.stop()
    took = time.perf_counter() - started
    print(f"{processing.what} of {count:,} payments: {took:.1f} s; meanwhile:")
    worst = 0.0
    for name, times in seconds.items():
        if not times:
            print(f"  {name:15} never ran to the end while the scan ran")
            worst = float("inf")
            continue
        worst = max(worst, max(times))
        print(f"  {name:15} {len(times):3} runs, median {statistics.median(times):.3f} s, "
              f"max {max(times):.3f} s")
    print("what status said:")
    for line in seen:
        print(f"  {line}")
    verdict = "ok" if worst <= answer_seconds_max else "TOO SLOW"
    print(f"slowest answer {worst:.3f} s (target <= {answer_seconds_max:.0f} s): {verdict}")
    return 0 if worst <= answer_seconds_max else 1


if __name__ == "__main__":
    sys.exit(main())
