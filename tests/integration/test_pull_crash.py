"""The pull side under faults: a gateway killed between a cancellation's commit and its
answer, and a cancellation racing with the start of day's execution on PostgreSQL.

Both use real `python -m tests.integration.pull_child` processes at a fixed time.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from gateway import announcements, db, pending
from ledger.schema import transfers
from tests.integration.daemon_fixtures import wait_for
from tests.integration.pull_fixtures import Out, riga
from tests.integration.test_cancellations import LATER, cancel, payment_status, waiting_batch
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, Batch, Installation

REPO = Path(__file__).resolve().parents[2]


def child(
    inst: Installation, now: dt.datetime, mode: str, start: float | None = None
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "tests.integration.pull_child",
        str(inst.config),
        now.isoformat(),
        mode,
    ]
    if start is not None:
        args.append(str(start))
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_killed_between_commit_and_answer(inst: Installation) -> None:
    """SIGKILL right after the cancellation's transaction commits: the restarted run
    delivers its answers once, and the cancelled payment never executes."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    inst.drop(cancel(("E-2", "20.00")), "cxl.xml", CLIENT_A)
    proc = child(inst, inst.clock.now(), "kill-after-commit")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, output.decode()
    assert out.new() == []  # committed, not answered yet
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")
    assert len(list(inst.env.spool.work(CLIENT_A).iterdir())) == 1
    result = inst.run()
    assert [o.recovered for o in result.outcomes] == [True]
    found = out.new()
    assert sorted(f.message for f in found) == ["camt.029.001.10", "pain.002.001.03"]
    assert inst.left_in(CLIENT_A) == []
    inst.run()
    assert out.new() == []  # delivered once
    before = inst.balance(A_MAIN)
    inst.clock.set(riga(LATER, "08:00"))
    inst.run()
    assert inst.balance(A_MAIN) == before - 4000  # E-1 and E-3 only
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")


def test_cancellation_racing_with_execution_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """Two processes at the start of day: one executes what is due, one cancels the same
    payments. Each payment is either executed (and the cancellation says AGNT) or
    cancelled (and never booked) — never both."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        rounds = 4
        for n in range(rounds):
            b = Batch(msg_id=f"RACE-{n}", execution_date=LATER.isoformat())
            for k in range(20):
                b.tx(f"R{n}-{k}", "1.00")
            inst.submit(b.build(), name=f"race{n}.xml")
        out = Out(inst.outbox(CLIENT_A))
        for n in range(rounds):
            moment = riga(LATER, "08:00") + dt.timedelta(minutes=n)
            txs = tuple((f"R{n}-{k}", "1.00") for k in range(20))
            inst.drop(cancel(*txs, msg_id=f"CXL-{n}", original=f"RACE-{n}"), f"c{n}.xml", CLIENT_A)
            start = time.time() + 3.0
            procs = [child(inst, moment, mode, start) for mode in ("requests", "execute")]
            for proc in procs:
                output, _ = proc.communicate(timeout=120)
                assert proc.returncode == 0, output.decode()
        answers = [f for f in out.new() if f.message == "camt.029.001.10"]
        assert len(answers) == rounds
        said = {}
        for answer in answers:
            for tx in answer.doc.xpath("//*[local-name()='TxInfAndSts']"):
                e2e = tx.xpath("*[local-name()='OrgnlEndToEndId']")[0].text
                said[e2e] = tx.xpath("*[local-name()='TxCxlSts']")[0].text
        p = db.payments.c
        with inst.env.engine.connect() as conn:
            rows = conn.execute(
                select(p.end_to_end_id, p.status, p.reason, p.transfer_ref).where(
                    p.msg_id.like("RACE-%")
                )
            ).all()
            booked = conn.execute(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.reference.in_([r.transfer_ref for r in rows if r.transfer_ref]))
            ).scalar_one()
        assert len(rows) == 20 * rounds and len(said) == 20 * rounds
        executed = {r.end_to_end_id for r in rows if r.status == "ACSC"}
        cancelled = {r.end_to_end_id for r in rows if r.status == "RJCT" and r.reason == "DS02"}
        assert executed | cancelled == set(said) and not executed & cancelled
        assert {e for e, status in said.items() if status == "ACCR"} == cancelled
        assert {e for e, status in said.items() if status == "RJCR"} == executed
        assert all(r.transfer_ref is None for r in rows if r.end_to_end_id in cancelled)
        assert booked >= (1 if executed else 0)
        expected = inst.balance(A_MAIN)
        inst.env.ledger.check_invariants()
        assert expected == inst.posting_sums()[A_MAIN]
        print(f"race: {len(executed)} executed, {len(cancelled)} cancelled")
    finally:
        inst.close()


def test_trial_killed_between_commit_and_answer(inst: Installation) -> None:
    """A trial's answer committed but not delivered: the restart delivers it once and
    shelves the file in trials/; nothing was booked."""
    out = Out(inst.outbox(CLIENT_A))
    before = inst.balances()
    trials = inst.env.spool.trial_box(CLIENT_A)
    (trials / "try.xml").write_bytes(Batch(msg_id="TRY-K").tx("K-1", "1.00").build())
    proc = child(inst, inst.clock.now(), "kill-after-commit")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, output.decode()
    assert out.new() == [] and list(trials.iterdir()) == []
    result = inst.run()
    assert [(o.shelf, o.recovered) for o in result.outcomes] == [("trials", True)]
    (answer,) = out.new()
    assert "_TEST_pain.002.001.03_" in answer.path.name
    inst.run()
    assert out.new() == [] and inst.left_in(CLIENT_A) == []
    assert inst.balances() == before


def _waiting_on_payments(inst: Installation) -> bool:
    with inst.env.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query ILIKE '%gw_payments%' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(waiting) > 0


def _held(inst: Installation, values: dict[str, object], mode: str, moment: dt.datetime) -> str:
    """Hold the waiting payments of PAY-F locked in a transaction of our own (another
    process deciding them), start `mode` in a child, let it run into the lock, then
    change the payments with `values` and commit; the child's output."""
    p = db.payments.c
    with inst.env.engine.connect() as conn, conn.begin():
        conn.execute(select(p.id).where(p.msg_id == "PAY-F").with_for_update()).all()
        proc = child(inst, moment, mode)
        assert wait_for(lambda: _waiting_on_payments(inst), 60), "the child never waited"
        conn.execute(update(db.payments).where(p.msg_id == "PAY-F").values(**values))
        files = conn.execute(select(p.file_id).where(p.msg_id == "PAY-F").distinct()).scalars()
        announcements.refresh_days(conn, CLIENT_A, list(files))  # as the run it stands for would
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output.decode()
    return output.decode()


def test_a_cancellation_waits_for_an_execution_in_flight(tmp_path: Path, pg_url: str) -> None:
    """The start of day holds the payments while it executes them: a cancellation that
    comes meanwhile waits, then finds them executed (AGNT), and changes nothing."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        waiting_batch(inst)
        out = Out(inst.outbox(CLIENT_A))
        inst.drop(cancel(("E-2", "20.00")), "cxl.xml", CLIENT_A)
        executed = {"status": "ACSC", "acct_svcr_ref": "EXECUTED-ELSEWHERE"}
        _held(inst, executed, "requests", inst.clock.now())
        (answer,) = out.new()
        assert answer.text("TxInfAndSts/TxCxlSts") == "RJCR"
        assert answer.text("CxlStsRsnInf/Rsn/Cd") == "AGNT"
        assert payment_status(inst, "E-2") == ("ACSC", None)
    finally:
        inst.close()


def test_an_execution_waits_for_a_cancellation_in_flight(tmp_path: Path, pg_url: str) -> None:
    """A cancellation holds the payments while it cancels them: the start of day's
    execution that comes meanwhile waits, then finds them cancelled and books nothing."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        waiting_batch(inst)
        before = inst.balance(A_MAIN)
        cancelled = {"status": "RJCT", "reason": "DS02"}
        _held(inst, cancelled, "execute", riga(LATER, "08:00"))
        assert inst.balance(A_MAIN) == before
        assert {payment_status(inst, f"E-{n}") for n in (1, 2, 3)} == {("RJCT", "DS02")}
        inst.env.ledger.check_invariants()
    finally:
        inst.close()


def test_due_payments_lock_their_rows_before_their_file_as_a_cancellation_does(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation locks the payments it names, then their file. The run of due
    payments, reading them a chunk at a time, locked the file first: with a cancellation
    holding a payment of a later chunk, the two deadlocked (PostgreSQL refused one; the
    race test above caught it once). It locks all of a file's due payments first now:
    here a cancellation's transaction holds the second payment, the run waits for it
    without holding the file, and the cancellation then takes the file."""
    monkeypatch.setattr(pending, "chunk_payments", 1)
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        waiting_batch(inst)
        inst.clock.set(riga(LATER, "08:00"))
        p = db.payments.c
        with inst.env.engine.connect() as holder:
            tx = holder.begin()
            second = holder.execute(
                select(p.id, p.file_id).where(p.end_to_end_id == "E-2").with_for_update()
            ).one()
            done: list[object] = []
            now = inst.env.clock.now()
            run = threading.Thread(target=lambda: done.append(pending.execute_due(inst.env, now)))
            run.start()
            time.sleep(1.0)  # the run is waiting for the second payment
            holder.execute(text("SET LOCAL lock_timeout = '5s'"))
            holder.execute(  # the file, as `cancel_run` takes it next: no deadlock
                select(db.files.c.reports).where(db.files.c.id == second.file_id).with_for_update()
            ).one()
            tx.rollback()
            run.join(timeout=30)
        assert done == [[second.file_id]]
        assert {payment_status(inst, f"E-{n}")[0] for n in (1, 2, 3)} == {"ACSC"}
    finally:
        inst.close()
