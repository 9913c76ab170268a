"""A client's later files wait behind an earlier one (`Pipeline.behind`) no longer than needed,
and keep their order where no receipt says it: a second outside review's cases."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from typing import Any

import pytest

from gateway import arrival, newfile
from gateway.files import locked
from gateway.spool import file_name_bytes_max
from gateway.worker import Share, Worker
from tests.integration.test_file_order import _pays_80, _upload, _upload_big_80
from tests.pipeline_fixtures import CLIENT_A, Installation


def _first_always_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    issue = newfile._issue_first_report

    def failing(*args: Any, **kwargs: Any) -> Any:
        if args[3].msg_id == "FIRST":
            raise KeyError("surprise")  # a defect of ours FIRST's content triggers, every time
        return issue(*args, **kwargs)

    monkeypatch.setattr(newfile, "_issue_first_report", failing)


def test_a_file_quarantined_in_the_pass_does_not_hold_back_its_clients_later_file(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FIRST fails on every try; on its third (SPEC §6) it goes to quarantine/ and is no
    longer anyone's earlier file. SECOND should run in that same pass; it waits another
    pass (`Pipeline.run` marks the client behind for any job with outcome None)."""
    _first_always_fails(monkeypatch)
    _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    assert inst.run().outcomes == []  # try 1
    assert inst.run().outcomes == []  # try 2
    third = inst.run()  # try 3: FIRST quarantined
    assert list((inst.env.spool.root / "quarantine").rglob("*first.xml*"))
    assert [o.msg_id for o in third.outcomes] == ["SECOND"]


def test_a_file_its_client_deleted_meanwhile_does_not_hold_back_its_later_file(
    inst: Installation,
) -> None:
    """The pass listed A's FIRST and SECOND; A then deleted FIRST over SFTP (rm /in/first.xml)
    before the pass reached it. Nothing of A's is left before SECOND; it is skipped
    (`groups` keeps the vanished file, `locked` yields False, `behind`)."""
    first = _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    pipeline = inst.pipeline
    pipeline.begin_pass()
    listed = pipeline.waiting()
    first.unlink()  # the client's rm, after the listing
    outcomes = pipeline.process(listed)
    assert [o.msg_id for o in outcomes] == ["SECOND"]


def test_a_daemon_pass_that_left_a_client_behind_looks_again_before_the_rescan(
    inst: Installation,
) -> None:
    """`scan --once` beside the daemon has claimed A's FIRST and runs it (its lock in
    work/). SECOND's upload wakes the worker: its pass must leave SECOND behind FIRST, and
    then nothing wakes it when FIRST is done — it reports nothing processed and no
    recheck, so `WorkerLoop.run` sleeps `rescan_seconds` (up to 3600) before SECOND runs."""
    worker = Worker(inst.env, threading.Event(), Share(0, 1))
    first = _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    claim = inst.env.spool.claim(CLIENT_A, first, inst.clock.now())
    assert claim is not None
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    with contextlib.ExitStack() as other_process:
        assert other_process.enter_context(locked(claim.path))
        report = worker.run_pass()
    assert report.processed == 0
    assert report.recheck_seconds is not None, (
        f"SECOND waits a full rescan_seconds={inst.settings.rescan_seconds}"
    )


def test_a_file_quarantined_before_the_day_began_does_not_hold_every_clients_due_run(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thursday 09:00; a payment of A's is due today. A's FIRST and SECOND were received
    Wednesday 23:00/23:01 (the daemon was down); FIRST trips a defect on every try. On
    the third pass FIRST goes to quarantine/: nothing received before the day is left
    but SECOND, which the pass skips (`behind`) — so `dayorder._left_before` holds the
    due run of EVERY client for that pass as well."""
    from tests.integration.test_due_run_first import THURSDAY, received, waiting_for_thursday
    from tests.pipeline_fixtures import A_MAIN, B_MAIN, RIGA, TODAY, Batch

    _first_always_fails(monkeypatch)
    waiting_for_thursday(inst, A_MAIN, B_MAIN, "80.00")
    inst.clock.set(dt.datetime.combine(THURSDAY, dt.time(9), RIGA))
    evening = dt.datetime.combine(TODAY, dt.time(23), RIGA)
    data = Batch(msg_id="FIRST", debtor=A_MAIN).tx("F-1", "1.00", B_MAIN).build()
    received(inst, data, "first.xml", evening)
    data = Batch(msg_id="SECOND", debtor=A_MAIN).tx("S-1", "1.00", B_MAIN).build()
    received(inst, data, "second.xml", evening + dt.timedelta(minutes=1))
    assert inst.run().files_with_pending_executed == []  # FIRST in work/: waited for
    assert inst.run().files_with_pending_executed == []
    third = inst.run()  # FIRST quarantined: only SECOND is left of the evening's files
    assert list((inst.env.spool.root / "quarantine").rglob("*first.xml*"))
    assert third.files_with_pending_executed, "the due run of every client waits a pass more"


def test_scan_once_read_ahead_does_not_run_ahead_of_a_trial_received_first(
    inst: Installation,
) -> None:
    """A uploads TRIAL to /test at 10:00 (80.00 of A_SMALL's 100.00), then BIG to /in at
    10:01 (80.00 in 4,000 payments). `scan --once` reads BIG ahead (`readahead.start`
    looks at in/ only, `spool.waiting`) and runs it first (`dayorder._run`, before
    `_take`): the trial, received first, is checked after it and finds the funds short,
    which `Pipeline.waiting_of` (in/ and test/ in one order) was meant to stop."""
    from gateway import readahead

    _upload(inst, _pays_80("TRIAL"), "trial.xml", trial=True)
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload_big_80(inst)
    first = readahead.start(inst.settings, inst.clock.now())
    assert first is None  # the trial came first: nothing is read ahead of it
    result = inst.pipeline.run_once(first)
    assert [(o.msg_id, o.shelf) for o in result.outcomes] == [
        ("TRIAL", "trials"), ("BIG", "archive")
    ]


def test_files_claimed_together_keep_their_order_in_work_without_receipts(
    inst: Installation,
) -> None:
    """OpenSSH mode (no receipts): FIRST arrives at 10:00, SECOND at 10:01 with `put -p`
    keeping its local mtime of 09:00. In in/ they are ordered by ctime: FIRST, SECOND.
    The pass claims both (two renames: one kernel tick, one ctime) and its group stops on a
    fault of ours (the database gone): both wait in work/. The next pass recovers them in
    `Spool.in_work` order — ctime tied, then the client's mtime: SECOND first, and it
    spends FIRST's money (FIRST AM04)."""
    from gateway.errors import TransientError

    inst.drop(_pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    second = inst.drop(_pays_80("SECOND"), "second.xml")
    earlier = (inst.clock.now() - dt.timedelta(hours=1)).timestamp()
    os.utime(second, (earlier, earlier))  # put -p
    pipeline, real = inst.pipeline, inst.pipeline.run_files

    def database_gone(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("OperationalError: the database is gone")

    pipeline.run_files = database_gone
    with pytest.raises(TransientError):
        inst.run()
    # (Claimed within one tick of the kernel's clock, as a pass's claims mostly are, their
    # ctimes are equal and the mtime decided; the claims' names now count them.)
    assert len(list(inst.env.spool.in_work(CLIENT_A))) == 2
    pipeline.run_files = real
    done = inst.run().outcomes
    assert [(o.msg_id, o.group_status) for o in done] == [("FIRST", "ACSC"), ("SECOND", "RJCT")]


def _another_process_claimed_first_of(inst: Installation, first_name: str) -> list[Any]:
    first = _upload(inst, _pays_80("FIRST"), first_name)
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    pipeline = inst.pipeline
    pipeline.begin_pass()
    listed = pipeline.waiting()  # FIRST, SECOND, both still in in/
    # meanwhile `scan --once` (another process) claims FIRST into work/ and runs it
    claim = inst.env.spool.claim(CLIENT_A, first, inst.clock.now())
    assert claim is not None
    with contextlib.ExitStack() as other_process:
        assert other_process.enter_context(locked(claim.path))
        outcomes = pipeline.process(listed)
    return outcomes


def test_a_long_named_file_another_process_claimed_does_not_hold_back_its_later_file(
    inst: Installation,
) -> None:
    """(Third outside review.) FIRST's name is 230 bytes (allowed; it has a receipt).
    Another process claimed it (its name in work/ cut to `file_name_bytes_max`) and runs
    it. `_another_has` compared the claim's cut name with the full one: no match, so A was
    not `behind` and SECOND ran ahead of FIRST, spending its 80.00 (FIRST got AM04)."""
    name = "f" * (230 - len(".xml")) + ".xml"
    assert len(name.encode()) > file_name_bytes_max
    outcomes = _another_process_claimed_first_of(inst, name)
    assert [o.msg_id for o in outcomes] == [], "SECOND ran while FIRST was another's to run"


def test_a_non_utf8_named_file_another_process_claimed_does_not_hold_back_its_later_file(
    inst: Installation,
) -> None:
    """(Third outside review.) OpenSSH mode (no receipts): A uploads `pay\\xe9.xml`
    (Latin-1 bytes, which OpenSSH takes), then SECOND. Another process claims FIRST: its
    work/ name carries `stored_name` (`pay\\\\xe9.xml`, backslash-escaped), which
    `_another_has` compared with the surrogate-escaped `path.name`: no match, A was not
    behind, SECOND ran ahead of FIRST and spent its 80.00."""
    import os

    first = inst.inbox(CLIENT_A) / os.fsdecode(b"pay\xe9.xml")
    first.write_bytes(_pays_80("FIRST"))
    inst.clock.advance(dt.timedelta(minutes=1))
    inst.drop(_pays_80("SECOND"), "second.xml")
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    pipeline = inst.pipeline
    pipeline.begin_pass()
    listed = pipeline.waiting()
    assert listed[0][1] == first
    claim = inst.env.spool.claim(CLIENT_A, first, inst.clock.now())  # the other process
    assert claim is not None
    with contextlib.ExitStack() as other_process:
        assert other_process.enter_context(locked(claim.path))
        outcomes = pipeline.process(listed)
    assert [o.msg_id for o in outcomes] == [], "SECOND ran while FIRST was another's to run"


def test_a_long_named_file_run_elsewhere_keeps_its_money_from_the_later_one(
    inst: Installation,
) -> None:
    """The long-name case run on: FIRST, received first, is paid once the other process
    (here: the next pass) runs it; SECOND, after it, finds A_SMALL short (it had spent
    FIRST's money)."""
    name = "f" * 226 + ".xml"
    ran = _another_process_claimed_first_of(inst, name)
    later = inst.run().outcomes
    assert [(o.msg_id, o.group_status) for o in ran + later] == [
        ("FIRST", "ACSC"), ("SECOND", "RJCT")
    ]


def test_claims_keep_their_order_across_a_new_second_of_a_busy_process(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Third outside review.) A claim's order counted every claim of the process's life
    and wrapped at 65,536: FIRST claimed as `<stamp>-ffff…`, SECOND in the same tick as
    `<stamp>-0000…` sorted first where their ctimes tied (no receipts). The count now
    starts afresh with each second the names carry."""
    spool = inst.env.spool
    first = inst.drop(_pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    second = inst.drop(_pays_80("SECOND"), "second.xml")
    busy = arrival.ClaimOrder()
    busy.stamp, busy.count = "20261125T075959", 0xFFFF  # a second of 65,535 claims before
    monkeypatch.setattr(arrival, "claims", busy)
    a = spool.claim(CLIENT_A, first, inst.clock.now())
    b = spool.claim(CLIENT_A, second, inst.clock.now())
    assert a is not None and b is not None
    assert a.path.name < b.path.name, (a.path.name, b.path.name)  # where ctimes tie


def test_a_file_failing_in_a_daemon_pass_is_tried_again_at_the_rescans(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Third outside review.) FIRST trips a defect of ours. Its failed try left A in
    `Pipeline.behind`, and `Worker.run_pass` asked for a recheck in 0.5 s: three tries and
    quarantine/ within a second. A worker looks again soon only for a client whose earlier
    file another process runs (`Pipeline.elsewhere`); a failed file waits for the rescan."""
    import threading

    from gateway.worker import Share, Worker

    _first_always_fails(monkeypatch)
    worker = Worker(inst.env, threading.Event(), Share(0, 1))
    _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    rechecks = []
    for _ in range(3):
        rechecks.append(worker.run_pass().recheck_seconds)
    assert rechecks == [None, None, None]  # each try waits for the rescan, as before
