"""The order of the day (`gateway.dayorder`) when things go wrong around it: a pass that
crosses midnight, a file from before the day that another process is running (a
`scan --once` beside the daemon, a second node), a client held by a fault of its folders,
a restart that moves clients between workers, and a worker held back for a while.

Each scenario: client A has a payment due Thursday, 150.00 from A_SMALL (which holds
100.00), that counts on client B's file received on Wednesday at 17:00 (before the
cut-off: it executes when taken) paying 100.00 into A_SMALL. In the order of the day B's
file runs first and the due payment is ACSC (test_due_run_first has the plain case); run
after it, the due payment is AM04."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from gateway import daemon, db
from gateway.environment import open_environment
from gateway.files import locked
from gateway.worker import PassReport, Share, Worker, held_back_seconds
from gateway.workers import WorkerLoop
from tests.integration.test_authorisation import WHEN, signing  # noqa: F401 (a fixture)
from tests.integration.test_cancellations import cancel
from tests.integration.test_due_run_first import (
    THURSDAY,
    received,
    spends_today,
    waiting_for_thursday,
)
from tests.pipeline_fixtures import (
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    RIGA,
    TODAY,
    Batch,
    Installation,
    batch,
)
from tests.signature_fixtures import signed

MORNING = dt.datetime.combine(THURSDAY, dt.time(9), RIGA)


def _b_pays_a(inst: Installation) -> None:
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "150.00")
    received(inst, spends_today("100.00", B_MAIN, A_SMALL), "day.xml",
             dt.datetime.combine(TODAY, dt.time(17), RIGA), client=CLIENT_B)  # fmt: skip


def _due_answer(inst: Installation) -> str:
    [due] = inst.new_answers(CLIENT_A)
    assert due.original_msg_id == "DUE-T"
    return due.statuses()["DUE"] + "".join(f" {r}" for r in due.tx("DUE").reasons)


def _worker(inst: Installation, index: int, env: Any = None) -> Worker:
    return Worker(env or inst.env, threading.Event(), Share(index, 2))


def _past_midnight(inst: Installation, leader: Worker, day: dt.date) -> None:
    """The leader's files of its next pass take until just after `day` began."""
    took = leader.pipeline.process

    def process(files: Any, *, claimed: bool = False, stop: Any = None) -> Any:
        done = took(files, claimed=claimed) if stop is None else \
            took(files, claimed=claimed, stop=stop)  # fmt: skip
        if stop is not None:  # the pass's own files (not what a stopped run left)
            inst.clock.set(dt.datetime.combine(day, dt.time(0, 0, 1), RIGA))
        return done

    leader.pipeline.process = process  # type: ignore[method-assign]


def test_a_pass_that_crosses_midnight_leaves_the_due_run_to_the_next(
    inst: Installation,
) -> None:
    """The leader's pass began at 23:59:59 (the books closed: no marks to keep) and reached
    its due run after midnight: it ran Thursday's due payments before B's worker had taken
    its file from before the day. Now it runs none; its next pass keeps the day's order."""
    _b_pays_a(inst)
    inst.clock.set(dt.datetime.combine(TODAY, dt.time(23, 59, 59), RIGA))
    leader = _worker(inst, 0)
    _past_midnight(inst, leader, THURSDAY)
    report = leader.run_pass()
    assert report.held_back and inst.new_answers(CLIENT_A) == []
    assert leader.pipeline.due.waiting_for == "the day changed during the pass"
    _worker(inst, 1).run_pass()
    leader.run_pass()
    assert _due_answer(inst) == "ACSC"


def test_a_pass_that_crosses_midnight_expires_no_batch_a_signature_completed_in_time(
    signing: Any,  # noqa: F811 (the fixture)
) -> None:
    """A's batch waits for its second signature until the start of a day; the signature
    was received at 23:50 the evening before and waits in A's in/ (A is worker 1's). The
    leader's pass began at 23:59:59 and reached the expiry after midnight: it expired the
    batch (DS24) before worker 1 took the signature that had completed it in time (an
    outside review). The expiry, too, waits for the next pass's order of the day."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="WAIT-X")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.group_status == "PDNG"
    with inst.env.engine.connect() as conn:
        [expires] = conn.execute(select(db.awaiting.c.expires_on)).scalars().all()
    evening = dt.datetime.combine(expires - dt.timedelta(days=1), dt.time(23, 50), RIGA)
    received(inst, signed("pay.xml", data, pki.second, evening.astimezone(dt.UTC)),
             "sig2.asice", evening, client=CLIENT_A)  # fmt: skip
    inst.clock.set(dt.datetime.combine(evening.date(), dt.time(23, 59, 59), RIGA))
    settings = inst.env.settings
    moved = dataclasses.replace(settings, clients=tuple(reversed(settings.clients)))
    assert [c.id for c in moved.clients] == [CLIENT_B, CLIENT_A]
    env = open_environment(moved, clock=inst.clock, need_sealer=True)
    try:
        leader = _worker(inst, 0, env)  # client B's
        _past_midnight(inst, leader, expires)
        assert leader.run_pass().held_back
        _worker(inst, 1, env).run_pass()  # A's: takes the signature
        leader.run_pass()
    finally:
        env.close()
    said = [(a.group_status, a.group_reasons, " ".join(a.group_info)) for a in inst.new_answers()]
    assert all(reasons != ["DS24"] for _, reasons, _ in said), said
    assert any("authorised: 2 of 2 signatures" in info for *_, info in said), said


def test_scan_once_beside_a_daemon_running_a_file_from_before_the_day_waits_for_it(
    inst: Installation,
) -> None:
    """An operator's `scan --once` while a daemon's worker runs B's file from Wednesday
    (claimed, its lock held): the scan skipped the file, yet ran every due payment.
    Now it runs none while such a file is in work/ (the log says why)."""
    _b_pays_a(inst)
    inst.clock.set(MORNING)
    claim = inst.env.spool.claim(CLIENT_B, inst.inbox(CLIENT_B) / "day.xml", inst.clock.now())
    assert claim is not None
    with locked(claim.path) as mine:  # the daemon's worker, in the middle of the file
        assert mine
        scan = inst.run()
    assert scan.files_with_pending_executed == [] and scan.outcomes == []
    inst.run()  # the file, taken up again (here, as if its worker had stopped)
    assert _due_answer(inst) == "ACSC"


def test_a_trial_from_before_the_day_that_another_process_runs_holds_no_due_run(
    inst: Installation,
) -> None:
    """A trial (test/) books nothing: one received the evening before that another process
    is running does not hold the day's due payments."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "50.00")
    trial = inst.env.spool.trial_box(CLIENT_B) / "trial.xml"
    trial.write_bytes(batch(("T", "1.00"), msg_id="TRY-1", debtor=B_MAIN))
    receipts = inst.env.spool.receipts(CLIENT_B) / "test"
    receipts.mkdir(parents=True, exist_ok=True)
    evening = dt.datetime.combine(TODAY, dt.time(20), RIGA).astimezone(dt.UTC)
    (receipts / "trial.xml.json").write_text(json.dumps({"received_at": evening.isoformat()}))
    inst.clock.set(MORNING)
    with locked(trial) as mine:  # another process's
        assert mine
        scan = inst.run()
    assert scan.files_with_pending_executed != []
    assert _due_answer(inst) == "ACSC"


def test_two_nodes_share_the_marks_and_wait_for_each_others_files(inst: Installation) -> None:
    """Two daemons on one database and spool, both with two workers: node 2's worker 1
    skipped the file node 1's worker 1 was running and noted its files from before the
    day as taken; node 2's leader then ran A's due payment. Now neither goes on while the
    file is in work/."""
    _b_pays_a(inst)
    inst.clock.set(MORNING)
    claim = inst.env.spool.claim(CLIENT_B, inst.inbox(CLIENT_B) / "day.xml", inst.clock.now())
    assert claim is not None
    with locked(claim.path) as mine:  # node 1's worker 1, in the middle of the file
        assert mine
        assert _worker(inst, 1).run_pass().held_back  # node 2's worker 1
        assert _worker(inst, 0).run_pass().held_back  # node 2's leader
    assert inst.new_answers(CLIENT_A) == []
    _worker(inst, 1).run_pass()
    _worker(inst, 0).run_pass()
    assert _due_answer(inst) == "ACSC"


def test_a_restart_that_moves_clients_between_workers_starts_the_days_marks_afresh(
    inst: Installation,
) -> None:
    """Worker 0 (client A) noted its files from before the day as taken; worker 1 (client
    B) had not taken B's file yet. Restarted with the clients' order changed, B is worker
    0's and A worker 1's: the marks named by worker number said A's new worker could run
    its due payment before anyone took B's file. The marks are of the workers' plan."""
    _b_pays_a(inst)
    inst.clock.set(MORNING)
    assert _worker(inst, 0).run_pass().held_back
    settings = inst.env.settings
    moved = dataclasses.replace(settings, clients=tuple(reversed(settings.clients)))
    assert [c.id for c in moved.clients[:2]] == [CLIENT_B, CLIENT_A]
    env = open_environment(moved, clock=inst.clock, need_sealer=False)
    try:
        a_worker = _worker(inst, 1, env)
        assert a_worker.run_pass().held_back
        assert inst.new_answers(CLIENT_A) == []
        _worker(inst, 0, env).run_pass()  # B's, with its file from before the day
        a_worker.run_pass()
    finally:
        env.close()
    assert _due_answer(inst) == "ACSC"


def test_a_held_client_waits_with_its_due_payments_and_holds_no_one_else(
    inst: Installation,
) -> None:
    """Client B's out/ cannot be made (a file in the way): B is held, its files wait. Its
    cancellation sent the evening before must still reach its payment due today, so B's
    due payments wait with its files; the other clients' due payments run."""
    waiting_for_thursday(inst, B_MAIN, A_SMALL, "10.00", client=CLIENT_B)
    a_t = Batch(msg_id="A-T", debtor=A_SMALL, execution_date=THURSDAY.isoformat())
    waiting_a = inst.submit(a_t.tx("AT", "5.00", B_MAIN).build(), name="a.xml")
    assert waiting_a.statuses() == {"AT": "PDNG"}
    evening = dt.datetime.combine(TODAY, dt.time(23), RIGA)
    received(inst, cancel(("DUE", "10.00"), original="DUE-T", pmt_inf_id="DUE-T-P1"),
             "cxl.xml", evening, client=CLIENT_B)  # fmt: skip
    inst.clock.set(MORNING)
    out = inst.outbox(CLIENT_B)
    for path in out.iterdir():
        path.unlink()
    out.rmdir()
    out.write_text("in the way")
    b_main = inst.balance(B_MAIN)
    held = inst.run()
    assert list(held.held) == [CLIENT_B]
    [a_due] = inst.new_answers(CLIENT_A)
    assert a_due.statuses() == {"AT": "ACSC"}  # A's due payment ran
    assert inst.balance(B_MAIN) == b_main + 500  # and B's did not (B_MAIN: +5.00 only)
    out.unlink()
    released = inst.run()
    assert [o.group_status for o in released.outcomes] == ["CNCL"]
    assert released.files_with_pending_executed == []
    assert inst.balance(B_MAIN) == b_main + 500


def test_a_held_back_worker_asks_once_for_the_others_and_looks_again_itself(
    inst: Installation,
) -> None:
    """A worker held back waits for another's part of the day's order, which an idle worker
    would do only at its next rescan (up to `rescan_seconds`): it asks the daemon, which
    wakes the others. It reported after every pass and the daemon woke every worker, itself
    too: it passed again and again, 20 ms apart, taking the CPU from the worker it waited
    for. It asks once; it looks again itself every `held_back_seconds`."""
    runner = daemon.Daemon(inst.settings, inst.env)
    stop, wake = threading.Event(), threading.Event()
    me = SimpleNamespace(share=Share(0, 2), send=lambda message: wake.set())
    woken: list[str] = []
    runner.workers = [me, SimpleNamespace(send=woken.append)]  # type: ignore[list-item]
    passes: list[float] = []

    class HeldBack:
        def start_up(self) -> int:
            return 0

        def run_pass(self) -> PassReport:
            passes.append(time.monotonic())
            return PassReport(0, False, held_back_seconds, {}, True)

    loop = WorkerLoop(
        HeldBack, settings=inst.settings, clock=inst.clock, stop=stop, wake=wake,
        report=lambda message: runner._handle(me, message),  # type: ignore[arg-type]
        files_in_work=lambda: 0,
    )  # fmt: skip
    threading.Timer(2.0, lambda: (stop.set(), wake.set())).start()
    loop.run()
    assert woken == ["wake"]  # the other worker, once
    assert 2 <= len(passes) <= 2 / held_back_seconds + 2, len(passes)
