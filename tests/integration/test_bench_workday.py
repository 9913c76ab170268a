"""The bench's working day (bench/workday.py): a real `scan --once` started with the bench's
environment runs on the pinned day, whatever day it really is, while the files it finds
still age by their modification times.

A Saturday pin answers `PDNG` (not a business day) and a Monday pin executes (`ACSC`),
on any real day. A temporary file written a moment ago in the spool's tmp/ — which a run
clears once it is an hour old — survives a pin days away, and the file is received at
its age before the pinned time, not on the wall clock's day.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from bench import workday
from gateway.environment import open_environment
from gateway.funding import fund
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, to_bytes
from gateway.settings import load
from tests.pipeline_fixtures import (
    A_MAIN,
    B_MAIN,
    CLIENT_A,
    FUNDS,
    RIGA,
    Answer,
    make_signing_key,
    write_config,
)

GATEWAY = Path(sys.executable).with_name("ekase-gateway")
SATURDAY, MONDAY = dt.date(2026, 12, 5), dt.date(2026, 12, 7)


@pytest.mark.parametrize(("day", "status"), [(SATURDAY, "PDNG"), (MONDAY, "ACSC")])
def test_a_scan_runs_on_the_pinned_day(tmp_path: Path, day: dt.date, status: str) -> None:
    late = "23:59:59"
    config = write_config(
        tmp_path / "gw", cutoff_internal=late, cutoff_external=late, eod_time=late
    )
    settings = load(config)
    make_signing_key(settings)
    env = open_environment(settings, need_sealer=False)
    try:
        fund(env, A_MAIN, FUNDS[A_MAIN], key="setup")
    finally:
        env.close()
    tx = SampleTx("E2E-1", "1.00", B_MAIN)
    pmt = SamplePmtInf("P-1", A_MAIN, [tx], execution_date=day.isoformat())
    batch = to_bytes(SampleBatch(msg_id="PINNED-1", payment_infos=[pmt], nb_of_txs="1"))
    (settings.spool_dir / "clients" / CLIENT_A / "in" / "pinned.xml").write_bytes(batch)
    young = settings.spool_dir / "tmp" / ".young.xml"
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(b"half written by another process")

    moment = dt.datetime.combine(day, dt.time(10, 0), RIGA)
    environment = workday.pinned(moment)
    done = subprocess.run(
        [str(GATEWAY), "scan", "-c", str(config), "--once"],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    (path,) = (settings.spool_dir / "clients" / CLIENT_A / "out").glob("*.xml")
    answer = Answer.read(path)
    assert answer.statuses() == {"E2E-1": status}
    assert f"{day:%Y-%m-%d}T10:" in (answer._text("//p:GrpHdr/p:CreDtTm") or "")
    assert young.exists()
    # Received: the file's modification time on the gateway's clock (its age before
    # the pinned now), not the wall clock's day.
    (findings,) = settings.spool_dir.rglob("*.findings.txt")
    line = next(x for x in findings.read_text().splitlines() if x.startswith("Received:"))
    received = dt.datetime.fromisoformat(line.split()[1])
    assert dt.timedelta(0) <= moment - received < dt.timedelta(seconds=60), line
