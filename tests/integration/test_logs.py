"""Logs as operators handle them (SPEC §9): logrotate's SIGHUP, and commands whose stdout
is their own summary only, with the log lines on stderr and in the log file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon_fixtures import (
    batch,
    drop,
    make_install,
    running_daemon,
    wait_for,
)
from tests.pipeline_fixtures import A_MAIN, RIGA, Batch, Installation

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
PAST_DAY = dt.date(2026, 11, 17)  # a Tuesday before the real date the tests run on


def json_events(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def file_events(path: Path) -> list[str]:
    return [e["event"] for e in json_events(path.read_text())] if path.exists() else []


@pytest.mark.timeout(90)
def test_sighup_reopens_the_log_file_after_logrotate_moved_it(tmp_path: Path) -> None:
    """logrotate renames `gateway.jsonl` and sends SIGHUP (no copytruncate): the daemon
    starts a new file at the configured path, and what it logs next goes there, not into
    the rotated file."""
    install = make_install(tmp_path / "gw")
    log_file = install.spool / "log" / "gateway.jsonl"
    rotated = log_file.with_name("gateway.jsonl.1")
    with running_daemon(install) as daemon:
        daemon.wait_started()
        assert "daemon.started" in file_events(log_file)
        os.rename(log_file, rotated)
        daemon.signal(signal.SIGHUP)
        assert wait_for(lambda: "log.reopened" in file_events(log_file), 10), daemon.tail()
        drop(install.folder("alpha", "in"), "after.xml", batch("HUP-1", "alpha", 1))
        assert wait_for(lambda: "file.processed" in file_events(log_file), 30), daemon.tail()
        assert daemon.process.poll() is None, "SIGHUP must not stop the daemon"
    assert "file.processed" not in file_events(rotated)
    assert "daemon.started" in file_events(rotated)


_WORKER_HUP = r"""
import os, signal, sys, threading
from pathlib import Path
import structlog
from gateway import logs, workers

logs.configure(Path(sys.argv[1]), stream=open(os.devnull, "w"))
stop, wake = threading.Event(), threading.Event()
workers._on_signals(stop, wake)  # what a worker process installs
tee = logs._tee
real_append = tee._append

def append(data):  # a SIGHUP of the process group lands on a log line's write
    problem = real_append(data)
    if b"second" in data:
        os.kill(os.getpid(), signal.SIGHUP)
    return problem

tee._append = append
log = structlog.get_logger("t")
log.info("first")
log.info("second")
print("returned", flush=True)
"""


def test_a_sighup_a_worker_gets_during_a_log_line_does_not_hang_it(tmp_path: Path) -> None:
    """SIGHUP to the daemon's process group (`kill -HUP -PGID`, the terminal of `make run`
    closed, `systemctl kill -s HUP`) reaches the workers too. A worker's handler reopened
    the log itself, inside the log line its main thread was writing, and waited for the
    log's lock for ever (a reviewer): its clients were never answered. A worker ignores
    it; the daemon tells it to reopen (the test above)."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_HUP, str(tmp_path / "gw.jsonl")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "returned\n", done.stderr[-2000:]


@pytest.fixture(scope="module")
def past(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installation with a booked payment on a past business day (the CLI uses the
    real clock, so the day must be over)."""
    assert dt.datetime.now(RIGA).date() > PAST_DAY
    base = tmp_path_factory.mktemp("past")
    inst = Installation.create(
        base,
        now=dt.datetime.combine(PAST_DAY, dt.time(10), RIGA),
        need_sealer=True,
        log_file="spool/log/gateway.jsonl",
    )
    try:
        inst.submit(Batch(msg_id="OUT-1", execution_date=PAST_DAY.isoformat())
                    .tx("O-1", "9.99").build())
    finally:
        inst.close()
    return base


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def test_eod_prints_its_summary_on_stdout_and_logs_on_stderr(past: Path) -> None:
    """`eod -c … --date D` as a script reads it: stdout is the summary, line by line (one
    per account and a total), without a single JSON log line; the log lines of the run
    (`statement.written`) are on stderr and in the log file."""
    done = command("eod", "-c", str(past / "gateway.toml"), "--date", PAST_DAY.isoformat())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = re.compile(r"^LV\w+ 2026-11-17: \S+")
    assert all(summary.match(line) for line in lines[:-1]), lines
    assert lines[-1] == f"{len(lines) - 1} statement(s) written for 2026-11-17"
    assert json_events(done.stdout) == []
    assert {e["event"] for e in json_events(done.stderr)} == {"statement.written"}
    logged = file_events(past / "spool" / "log" / "gateway.jsonl")
    assert logged.count("statement.written") == len(lines) - 1


def test_eod_of_a_day_whose_due_payments_did_not_run_says_so(tmp_path: Path) -> None:
    """A payment due on 19 November that no scan ran (the daemon was down): `eod --date`
    of that day writes its statements without it — it is booked the day it runs — and
    says on stderr that one payment due by then is still pending (it said nothing: an
    outside tester)."""
    due = PAST_DAY + dt.timedelta(days=2)  # (18 November is a Latvian holiday)
    inst = Installation.create(
        tmp_path / "gw", now=dt.datetime.combine(PAST_DAY, dt.time(10), RIGA), need_sealer=True
    )
    try:
        answer = inst.submit(
            Batch(msg_id="LATE-1", execution_date=due.isoformat()).tx("L-1", "4.00").build()
        )
        assert answer.statuses() == {"L-1": "PDNG"}
    finally:
        inst.close()
    config = str(tmp_path / "gw" / "gateway.toml")
    for day in (PAST_DAY, due):
        done = command("eod", "-c", config, "--date", day.isoformat())
        assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith(f"statement(s) written for {due}")
    notes = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert notes == [
        f"ekase-gateway: note: 1 payment(s) due by {due} still pending (not run, or waiting "
        "for a rate or a large-payment day): booked, and stated, the day they run"
    ], done.stderr


def test_report_and_scan_keep_log_lines_out_of_stdout(past: Path) -> None:
    """`report` prints the name of the report it wrote and `scan --once` its one-line
    count; the `file.processed` line of the scan is on stderr, never on stdout."""
    config = str(past / "gateway.toml")
    report = command("report", "-c", config, "--iban", A_MAIN)
    assert report.returncode == 0, report.stderr
    assert re.fullmatch(r"\d{8}T\d{6}_camt\.052\.001\.02_\S+\.xml\n", report.stdout)
    inbox = past / "spool" / "clients" / "iestade-a" / "in"
    (inbox / "late.xml").write_bytes(b"not a payment file")
    scan = command("scan", "-c", config, "--once")
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.startswith(
        "processed 1 file(s): 0 answered, 1 rejected as a whole"
    )
    assert len(scan.stdout.splitlines()) == 1 and json_events(scan.stdout) == []
    assert "file.processed" in [e["event"] for e in json_events(scan.stderr)]
