"""The run of the day's due payments comes first (SPEC §6: "at the start of that business
day"), also while other workers book files from the same accounts (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway import dayorder, pending, readahead
from gateway.inbound.reader import inline_bytes_max
from gateway.worker import Share, Worker, held_back_seconds
from ledger import calendar
from ledger.core import Posting, Transfer, TransferKind
from ledger.tx import BalanceConflict
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    RIGA,
    TODAY,
    Batch,
    Installation,
)


def test_a_file_booked_meanwhile_waits_for_the_due_run(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file another worker booked from the same account while the due run was deciding
    made the run fail at its end (`BalanceConflict`: debited by another writer meanwhile);
    the run backed off and tried again, and lost again for as long as uploads kept coming
    (a tester: two minutes, 2,076 payments due still waiting). The run locks what it moves
    first: the other booking waits for it, and is the one that is done again."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        tomorrow = calendar.next_business_day(TODAY)
        inst.submit(Batch(msg_id="DUE-1", execution_date=tomorrow.isoformat())
                    .tx("D-1", "10.00", B_MAIN).build())  # fmt: skip
        inst.clock.set(dt.datetime.combine(tomorrow, dt.time(9), RIGA).astimezone(dt.UTC))
        other: list[Any] = []
        real = pending._execute

        def meanwhile() -> None:  # another worker's file from A_MAIN, committed at once
            try:
                with inst.env.ledger.begin() as tx:
                    accounts = tx.accounts([A_MAIN, B_MAIN])
                    legs = (Posting(A_MAIN, -500, "EUR"), Posting(B_MAIN, 500, "EUR"))
                    key = "OTHER-WORKER-1"
                    transfer = Transfer(key, key, TransferKind.INTERNAL, legs, tomorrow, tomorrow)
                    tx.post([transfer], accounts, inst.clock.now())
                other.append("committed")
            except BalanceConflict as conflict:  # its group is run again at once
                other.append(conflict)

        def execute(*args: Any, **kwargs: Any) -> Any:  # once the run has read its accounts
            if not threads:
                booking = threading.Thread(target=meanwhile)
                booking.start()
                booking.join(2.0)  # committed by now, unless it waits for this run
                threads.append(booking)
            return real(*args, **kwargs)

        threads: list[threading.Thread] = []
        monkeypatch.setattr(pending, "_execute", execute)
        inst.new_answers()
        assert inst.run().files_with_pending_executed  # the due run was not refused
        for thread in threads:
            thread.join(30)
        [answer] = inst.new_answers()
        assert answer.statuses() == {"D-1": "ACSC"}
        assert len(other) == 1 and isinstance(other[0], BalanceConflict), other
    finally:
        inst.close()


def test_a_lock_list_longer_than_a_statement_is_taken_in_id_order(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks go in id order, as every flush takes them (no deadlock between the two): a
    list of accounts longer than one statement's parameters is locked in chunks of it
    sorted by id, not by IBAN."""
    from ledger import tx as ledger_tx

    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        monkeypatch.setattr(ledger_tx, "params_per_statement_max", 1)
        with inst.env.ledger.begin() as tx:
            ibans = [A_MAIN, B_MAIN]
            assert tx._in_id_order(sorted(ibans, reverse=True)) == sorted(
                ibans, key=lambda i: tx.accounts([i])[i].id
            )
            locked = tx.accounts([*ibans, "LV00NOSUCHACCOUNT0000"], lock=True)
            assert sorted(locked) == sorted(ibans)
    finally:
        inst.close()


# -- the files of a pass around the day's start (SPEC §6) ----------------------------------

THURSDAY = calendar.next_business_day(TODAY)


def received(inst: Installation, data: bytes, name: str, at: dt.datetime,
             client: str = CLIENT_A) -> None:  # fmt: skip
    """A file left in in/ as the built-in server leaves it: with its receipt, received `at`."""
    path = inst.drop(data, name, client)
    receipt = inst.env.spool.receipts(client) / f"{path.name}.json"
    receipt.write_text(json.dumps({"received_at": at.astimezone(dt.UTC).isoformat()}))


def waiting_for_thursday(inst: Installation, debtor: str, creditor: str, amount: str,
                         client: str = CLIENT_A) -> None:  # fmt: skip
    day = THURSDAY.isoformat()
    data = Batch(msg_id="DUE-T", debtor=debtor, execution_date=day).tx("DUE", amount, creditor)
    answer = inst.submit(data.build(), name="due.xml", client=client)
    assert answer.statuses() == {"DUE": "PDNG"}


def spends_today(amount: str, debtor: str, creditor: str) -> bytes:
    return Batch(msg_id="DAY-1", debtor=debtor).tx("DAY", amount, creditor).build()


def test_a_file_of_the_day_comes_after_the_payments_due_that_day(inst: Installation) -> None:
    """A daemon down overnight (or files arriving as the day begins) finds the day's first
    files waiting: a file received at 07:30 was taken before the payments due at the day's
    start and spent the money they were accepted against (they were refused AM04). The
    payments due today run first; the file of the day is judged against what they left."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "80.00")  # of 100.00
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    received(inst, spends_today("50.00", A_SMALL, B_MAIN), "day.xml",
             dt.datetime.combine(THURSDAY, dt.time(7, 30), RIGA))  # fmt: skip
    result = inst.run()
    assert len(result.outcomes) == 1 and len(result.files_with_pending_executed) == 1
    day, due = sorted(inst.new_answers(), key=lambda a: a.original_msg_id or "")
    assert (day.original_msg_id, due.original_msg_id) == ("DAY-1", "DUE-T")
    assert due.statuses() == {"DUE": "ACSC"}
    assert day.statuses() == {"DAY": "RJCT"} and day.tx("DAY").reasons == ["AM04"]
    assert inst.balance(A_SMALL) == 2000


def test_a_cancellation_sent_the_evening_before_reaches_the_payment_before_it_runs(
    inst: Installation,
) -> None:
    """A cancellation received at 23:00, taken only the next morning (the daemon was down),
    comes before the day's due payments it would otherwise lose to: the payment is
    cancelled, never executed."""
    from tests.integration.test_cancellations import cancel

    waiting_for_thursday(inst, A_MAIN, B_MAIN, "10.00")
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    evening = dt.datetime.combine(TODAY, dt.time(23), RIGA)
    received(inst, cancel(("DUE", "10.00"), original="DUE-T", pmt_inf_id="DUE-T-P1"), "cxl.xml",
             evening)  # fmt: skip
    before = inst.balance(A_MAIN)
    result = inst.run()
    assert [o.group_status for o in result.outcomes] == ["CNCL"]
    assert result.files_with_pending_executed == []
    assert inst.balance(A_MAIN) == before


def test_each_worker_runs_its_own_clients_due_payments_before_their_files_of_the_day(
    inst: Installation,
) -> None:
    """With two workers, the second (client B's) ran its client's file of the day while
    the leader had not run the day's due payments yet: it spent their money. Each worker
    runs its own clients' due payments, between the files that came before the day began
    and those since; the leader runs none of client B's."""
    assert [c.id for c in inst.env.settings.clients[:2]] == [CLIENT_A, CLIENT_B]
    waiting_for_thursday(inst, B_MAIN, A_MAIN, "800.00", client=CLIENT_B)  # of 1,000.00
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    leader = Worker(inst.env, threading.Event(), Share(0, 2))
    leader.run_pass()
    assert inst.new_answers(CLIENT_B) == []  # not the leader's to run
    received(inst, spends_today("300.00", B_MAIN, A_MAIN), "day.xml",
             dt.datetime.combine(THURSDAY, dt.time(8), RIGA), client=CLIENT_B)  # fmt: skip
    b_worker = Worker(inst.env, threading.Event(), Share(1, 2))
    b_worker.run_pass()  # B's due payments; its file of the day waits for the leader's
    [due] = inst.new_answers(CLIENT_B)
    assert due.statuses() == {"DUE": "ACSC"}
    leader.run_pass()
    b_worker.run_pass()
    [day] = inst.new_answers(CLIENT_B)
    assert day.tx("DAY").reasons == ["AM04"]


def test_a_file_read_ahead_that_came_since_the_day_began_waits_for_the_due_run(
    inst: Installation,
) -> None:
    """`scan --once` claims its first file and starts reading it before anything else
    (`gateway.readahead`): one received since the day began is still run after the
    payments due today, its reading child parsing on meanwhile."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "80.00")  # of 100.00
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    big = Batch(msg_id="DAY-BIG", debtor=A_SMALL)
    for n in range(6000):  # 60.00 in all
        big.tx(f"B-{n}", "0.01", B_MAIN)
    data = big.build()
    assert len(data) > inline_bytes_max  # read by a child: read ahead
    received(inst, data, "big.xml", dt.datetime.combine(THURSDAY, dt.time(7), RIGA))
    ahead = readahead.start(inst.settings, inst.clock.now())
    assert isinstance(ahead, readahead.ReadAhead)
    result = inst.pipeline.run_once(ahead)
    assert len(result.files_with_pending_executed) == 1
    day, due = sorted(inst.new_answers(), key=lambda a: a.original_msg_id or "")
    assert due.statuses() == {"DUE": "ACSC"}
    assert Counter(day.statuses().values()) == {"ACSC": 2000, "RJCT": 4000}
    assert inst.balance(A_SMALL) == 0


def test_no_worker_takes_a_file_of_the_day_before_every_worker_ran_its_due_payments(
    inst: Installation,
) -> None:
    """Client A's payment due today pays into client B's account; B's file of the day
    counts on it. B's worker (1 of 2) took that file before A's worker had run A's due
    payments (an outside reviewer): refused AM04, then the money came. No worker takes a
    file received since the day began until every worker has run its due payments."""
    waiting_for_thursday(inst, A_MAIN, B_MAIN, "800.00")  # B_MAIN holds 1,000.00
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    received(inst, spends_today("1500.00", B_MAIN, A_MAIN), "day.xml",
             dt.datetime.combine(THURSDAY, dt.time(8), RIGA), client=CLIENT_B)  # fmt: skip
    b_worker = Worker(inst.env, threading.Event(), Share(1, 2))
    report = b_worker.run_pass()
    assert inst.new_answers(CLIENT_B) == [] and report.recheck_seconds == held_back_seconds
    assert [p.name for p in inst.inbox(CLIENT_B).iterdir()] == ["day.xml"]
    Worker(inst.env, threading.Event(), Share(0, 2)).run_pass()  # A's due payments
    b_worker.run_pass()
    [day] = inst.new_answers(CLIENT_B)
    assert day.statuses() == {"DAY": "ACSC"}


def test_a_file_received_before_the_day_began_and_still_settling_holds_the_due_run(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenSSH upload (no receipt) of a cancellation completed at 23:59:50 and was still
    settling at midnight: the pass ran the day's due payments without it, and the payment
    it cancels executed (an outside reviewer). While a file received before the day began
    settles, neither the due payments nor the files since run."""
    from tests.integration.test_cancellations import cancel

    waiting_for_thursday(inst, A_MAIN, B_MAIN, "10.00")
    evening = dt.datetime.combine(TODAY, dt.time(23, 59, 50), RIGA)
    monkeypatch.setattr(dayorder, "on_clock", lambda clock, stamp: evening)  # its arrival
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(0, 0, 1), RIGA))
    inst.drop(cancel(("DUE", "10.00"), original="DUE-T", pmt_inf_id="DUE-T-P1"), "cxl.xml")
    worker = Worker(inst.env, threading.Event())
    before = inst.balance(A_MAIN)
    assert worker.run_pass().recheck_seconds is not None  # it settles for `settle_seconds`
    assert inst.new_answers() == [] and inst.balance(A_MAIN) == before
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    worker.run_pass()
    [cancelled] = inst.new_answers()  # the original file's follow-up (and a camt.029)
    assert cancelled.tx("DUE").reasons == ["DS02"] and inst.balance(A_MAIN) == before
    assert [p.name for p in inst.inbox().iterdir()] == []


def test_a_file_of_the_day_a_stopped_run_left_in_work_waits_for_the_due_run(
    inst: Installation,
) -> None:
    """A file received since the day began that a stopped `scan --once` had claimed lay in
    work/; the next run took it up first, before the payments due that day (an outside
    reviewer). Taken up again, it keeps its place in the order of the day."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "80.00")  # of 100.00
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    received(inst, spends_today("50.00", A_SMALL, B_MAIN), "day.xml",
             dt.datetime.combine(THURSDAY, dt.time(7, 30), RIGA))  # fmt: skip
    assert inst.env.spool.claim(CLIENT_A, inst.inbox() / "day.xml", inst.clock.now())
    result = inst.run()  # then the process stopped: this is the next run
    assert len(result.outcomes) == 1 and len(result.files_with_pending_executed) == 1
    day, due = sorted(inst.new_answers(), key=lambda a: a.original_msg_id or "")
    assert due.statuses() == {"DUE": "ACSC"}
    assert day.tx("DAY").reasons == ["AM04"]


def test_a_file_received_the_evening_before_runs_with_the_days_due_payments_after_earlier_ones(
    inst: Installation,
) -> None:
    """A payment accepted on Wednesday for Thursday; another file, received Wednesday at
    23:47 (after the cut-offs: it too executes Thursday), taken only at 00:00:20 (the daemon
    was down). It was decided as it was taken: due now, it executed at once and the
    payment accepted first was refused AM04 (an outside tester). Decided as of its receipt,
    its payment waits (PDNG) like the other and runs with the day's due payments, after
    the one accepted before it."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "80.00")  # of 100.00
    late = Batch(msg_id="LATE", debtor=A_SMALL, execution_date=THURSDAY.isoformat())
    received(inst, late.tx("LATE", "50.00", B_MAIN).build(), "late.xml",
             dt.datetime.combine(TODAY, dt.time(23, 47), RIGA))  # fmt: skip
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(0, 0, 20), RIGA))
    result = inst.run()
    assert len(result.files_with_pending_executed) == 2
    answers = {(a.original_msg_id, *a.statuses().values()) for a in inst.new_answers()}
    assert answers == {("LATE", "PDNG"), ("DUE-T", "ACSC"), ("LATE", "RJCT")}
    assert inst.balance(A_SMALL) == 2000


def test_no_worker_runs_its_due_payments_before_every_worker_took_its_files_from_before_the_day(
    inst: Installation,
) -> None:
    """Client B's file received the day before pays into client A's account, and A's
    payment due today counts on it. A's worker (0 of 2) ran A's due payments before B's
    worker had taken that file (an outside reviewer: AM04; with one worker it was paid).
    No worker runs its due payments until every worker has taken its files from before
    the day began."""
    waiting_for_thursday(inst, A_SMALL, B_MAIN, "150.00")  # A_SMALL holds 100.00
    received(inst, spends_today("100.00", B_MAIN, A_SMALL), "day.xml",
             dt.datetime.combine(TODAY, dt.time(11), RIGA), client=CLIENT_B)  # fmt: skip
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(0, 0, 5), RIGA))
    a_worker = Worker(inst.env, threading.Event(), Share(0, 2))
    assert a_worker.run_pass().recheck_seconds == held_back_seconds
    assert inst.new_answers() == []  # A's due payment still waits
    Worker(inst.env, threading.Event(), Share(1, 2)).run_pass()  # B's file: 100.00 to A
    a_worker.run_pass()
    [due] = inst.new_answers()
    assert due.statuses() == {"DUE": "ACSC"}
