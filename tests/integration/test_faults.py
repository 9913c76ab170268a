"""Faults inside the gateway, injected into a file's run: what a client and an operator see.

SPEC §6: a fault of ours (disk, database, key) is never the client's — the file waits
unanswered and unbooked and is retried; an error our code makes on a file's content
three times sends it to quarantine/ for a person, never answered with a reason code.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import itertools
import os
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from prometheus_client import generate_latest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from gateway import daemon, metrics, newfile, progress, workers
from gateway.environment import make_reader_engine
from gateway.errors import TransientError
from gateway.sftp.receipts import UploadReceipt, receipt_path, write_receipt
from gateway.status import collect
from gateway.status_report import render
from gateway.worker import PassReport, Share
from gateway.workers import WorkerLoop
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, Installation, batch


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> dict[str, BaseException]:
    """`poison[msg_id] = error`: the run of a file with that MsgId fails with `error`
    inside its transaction, after its payments were decided and booked."""
    poisoned: dict[str, BaseException] = {}
    issue = newfile._issue_first_report

    def failing(*args: Any, **kwargs: Any) -> Any:
        header = args[3]
        if header.msg_id in poisoned:
            raise poisoned[header.msg_id]
        return issue(*args, **kwargs)

    monkeypatch.setattr(newfile, "_issue_first_report", failing)
    return poisoned


@pytest.mark.parametrize(
    ("bug", "shown"),
    [
        (KeyError("surprise"), "KeyError: 'surprise'"),
        # a constraint the file's content broke is the code's defect, not the database's
        (IntegrityError("INSERT", {}, Exception("UNIQUE failed")), "IntegrityError"),
        (DataError("INSERT", {}, Exception("value too long")), "DataError"),
    ],
    ids=["bug", "constraint", "value"],
)
def test_a_file_that_trips_a_bug_waits_then_goes_to_quarantine(
    inst: Installation, poison: dict[str, BaseException], bug: Exception, shown: str
) -> None:
    """A file that makes the gateway's own code fail is rolled back (nothing booked),
    not answered, and waits in work/; its client's later file waits behind it (it could
    spend what the first was to pay; another client's files go on). The third time it
    fails it is set aside in quarantine/ with the error, and the later one runs. Once
    the defect is fixed, the operator puts it back into in/ and it is processed afresh."""
    poison["POISON"] = bug
    before = inst.balance(A_MAIN)
    inst.drop(batch(("P-1", "10.00"), msg_id="POISON"), "01-poison.xml")
    inst.drop(batch(("G-1", "20.00"), msg_id="GOOD"), "02-good.xml")
    assert inst.run().outcomes == []
    assert inst.new_answers() == [] and inst.balance(A_MAIN) == before
    work = inst.env.spool.work("iestade-a")
    assert [p.name.split("__")[1] for p in inst.env.spool.in_work("iestade-a")] == [
        "01-poison.xml", "02-good.xml"
    ]
    assert list(inst.env.spool.tmp().iterdir()) == []  # its rendered answer is gone
    assert inst.run().outcomes == []  # second failure: both still waiting
    assert len(inst.env.spool.in_work("iestade-a")) == 2
    result = inst.run()  # third: quarantined, and the good file behind it runs
    assert [o.msg_id for o in result.outcomes] == ["GOOD"]
    [accepted] = inst.new_answers()
    assert accepted.original_msg_id == "GOOD" and accepted.group_status == "ACSC"
    assert inst.balance(A_MAIN) == before - 2000  # only the good file moved money
    assert inst.env.spool.in_work("iestade-a") == [] and list(work.iterdir()) == []
    quarantine = inst.env.spool.root / "quarantine" / "iestade-a"
    [held] = [p for p in quarantine.iterdir() if p.name.endswith("01-poison.xml")]
    error = held.with_name(held.name + ".error.txt").read_text()
    assert shown in error
    assert inst.new_answers() == []  # never answered with a business reason code
    assert inst.balance(A_MAIN) == before - 2000
    # Fixed: the same bytes put back into in/ are processed afresh (never recorded).
    del poison["POISON"]
    inst.drop(held.read_bytes(), "01-poison-again.xml")
    inst.run()
    [again] = inst.new_answers()
    assert again.original_msg_id == "POISON" and again.group_status == "ACSC"


def test_a_quarantined_file_moved_back_into_work_is_the_clients_upload_again(
    inst: Installation, poison: dict[str, BaseException]
) -> None:
    """README's way back for a quarantined file: moved with its receipt into work/, the
    next pass takes it up as the upload it was — its name, who sent it and from where —
    and answers it once (put into in/ instead, it would be an upload by nobody)."""
    poison["BACK"] = RuntimeError("a bug")
    data = batch(("B-1", "10.00"), msg_id="BACK")
    spool = inst.env.spool
    write_receipt(UploadReceipt(
        client_id="iestade-a", sftp_user="iestade-a-erp", source_ip="192.0.2.7",
        key_fingerprint="SHA256:test", file_name="back.xml", uploaded_as="back.xml",
        size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        received_at=inst.clock.now(), path=spool.inbox("iestade-a") / "back.xml",
        receipt_path=receipt_path(spool.root, "iestade-a", "back.xml"),
    ))  # fmt: skip
    inst.drop(data, "back.xml")
    for _ in range(3):
        inst.run()
    quarantine = spool.root / "quarantine" / "iestade-a"
    [held] = [p for p in quarantine.iterdir() if p.name.endswith("__back.xml")]
    del poison["BACK"]
    for path in (held, held.with_name(held.name + ".receipt.json")):
        os.replace(path, spool.work("iestade-a") / path.name)
    with structlog.testing.capture_logs() as logged:
        inst.run()
    [answer] = inst.new_answers()
    assert answer.original_msg_id == "BACK" and answer.group_status == "ACSC"
    [line] = [e for e in logged if e["event"] == "file.processed"]
    assert (line["file"], line["user"], line["source_ip"]) == (
        "back.xml", "iestade-a-erp", "192.0.2.7"
    ), line
    # taken up from work/ (as after a stopped run): the log says so, naming the file
    [resumed] = [e for e in logged if e["event"] == "file.resumed"]
    assert (resumed["client"], resumed["file"]) == ("iestade-a", "back.xml"), resumed
    assert not list(spool.work("iestade-a").iterdir())


@pytest.mark.parametrize(
    "fault",
    [
        OperationalError("UPDATE", {}, Exception("database is locked")),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["database", "disk full"],
)
def test_a_fault_of_ours_is_not_the_files_fault(
    inst: Installation, poison: dict[str, BaseException], fault: BaseException
) -> None:
    """A database or disk fault is not answered as a rejection and never counts against
    the file: the pass stops (the caller retries), the file stays in work/ unbooked, and
    once the fault clears it is processed normally, exactly once."""
    poison["RETRY"] = fault
    before = inst.balance(A_MAIN)
    inst.drop(batch(("R-1", "10.00"), msg_id="RETRY"), "retry.xml")
    for _ in range(4):  # more often than a defect is tried: never quarantined
        with pytest.raises(TransientError):
            inst.run()
    assert inst.new_answers() == []
    assert inst.balance(A_MAIN) == before
    assert len(list(inst.env.spool.work("iestade-a").glob("*__retry.xml"))) == 1
    del poison["RETRY"]
    inst.run()
    [answer] = inst.new_answers()
    assert answer.group_status == "ACSC"
    assert inst.balance(A_MAIN) == before - 1000


def test_files_that_waited_through_a_fault_run_in_the_order_they_came(
    inst: Installation, poison: dict[str, BaseException]
) -> None:
    """Files claimed in one pass share their claim names' second; the rest of the name is
    random, and after a fault they ran again in that random order: a later file could
    spend the money an earlier one was sent to pay. They resume in the order they came."""
    names = [f"{letter}.xml" for letter in "fbdaec"]
    for n, name in enumerate(names):
        inst.drop(batch((f"O-{n}", "1.00"), msg_id=f"ORDER-{n}"), name)
        inst.clock.advance(dt.timedelta(seconds=1))
    poison["ORDER-5"] = OperationalError("COMMIT", {}, Exception("disk I/O error"))
    with pytest.raises(TransientError):
        inst.run()
    assert len(inst.env.spool.in_work(CLIENT_A)) == len(names)
    del poison["ORDER-5"]
    assert [o.msg_id for o in inst.run().outcomes] == [f"ORDER-{n}" for n in range(6)]


def test_a_broken_invariant_stops_the_run(
    inst: Installation, poison: dict[str, BaseException]
) -> None:
    """An assertion about money stops processing (systemd restarts the daemon), and
    nothing of that file is committed or answered."""
    poison["BAD"] = AssertionError("books")
    before = inst.balance(A_MAIN)
    inst.drop(batch(("B-1", "10.00"), msg_id="BAD"), "bad.xml")
    with pytest.raises(AssertionError):
        inst.run()
    assert inst.balance(A_MAIN) == before
    assert inst.new_answers() == []


def test_the_daemon_backs_off_to_once_a_minute_and_alerts_until_the_fault_clears(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of ours that lasts (here the disk full, raised outside any file's run, as
    a delivery would) neither stops the worker nor makes it spin: every failed pass is
    followed by a wait that doubles up to a minute and stays there. Each failed pass is
    logged at error level, and the daemon it reports to counts it in
    `ekase_faults_total{kind}`, shows the files waiting in `ekase_fault_waiting_files` and
    in the heartbeat `status` reads. When a pass succeeds again, the fault is cleared
    everywhere. (The worker's reports cross a pipe in the daemon: test_disk_full.py and
    test_database_away.py run the real processes.)"""
    claimed = inst.env.spool.work(CLIENT_A) / "20261125T100000-0000aaaa__waiting.xml"
    claimed.parent.mkdir(parents=True, exist_ok=True)
    claimed.write_bytes(b"<x/>")
    runner = daemon.Daemon(inst.settings, inst.env)
    runner._heartbeat = progress.Heartbeat(inst.spool, inst.clock)
    stop, wake = threading.Event(), threading.Event()
    failures = 9
    calls: list[str] = []
    seen_in_heartbeat: list[str | None] = []

    class Failing:
        def start_up(self) -> int:
            return 0

        def run_pass(self) -> PassReport:
            calls.append("pass")
            beat = progress.read_heartbeat(inst.spool)
            seen_in_heartbeat.append(beat.fault.kind if beat and beat.fault else None)
            if calls.count("pass") <= failures:
                raise OSError(errno.ENOSPC, "No space left on device")
            stop.set()
            return PassReport(0, True, None)

    worker = SimpleNamespace(share=Share(0, 1))  # as the daemon holds it
    loop = WorkerLoop(
        Failing, settings=inst.settings, clock=inst.clock, stop=stop, wake=wake,
        report=lambda message: runner._handle(worker, message),  # type: ignore[arg-type]
        files_in_work=lambda: len(inst.env.spool.in_work(CLIENT_A)),
    )  # fmt: skip

    def wait(seconds: float) -> bool:
        calls.append(f"wait {seconds:g}")
        return False

    monkeypatch.setattr(loop, "back_off", wait)
    reader = make_reader_engine(inst.settings.database_url)
    registry = metrics.enable(inst.settings, reader).registry
    try:
        with structlog.testing.capture_logs() as logged:
            loop.run()
        exposition = generate_latest(registry).decode()
    finally:
        metrics.disable()
        reader.dispose()
    waits = ["1", "2", "4", "8", "16", "32", "60", "60", "60"]
    assert calls == [x for w in waits for x in ("pass", f"wait {w}")] + ["pass"]
    faults = [e for e in logged if e["event"] == "pass.fault"]
    assert len(faults) == failures
    assert {(e["log_level"], e["kind"], e["files_waiting"]) for e in faults} == {
        ("error", "disk_full", 1)
    }
    assert [e["event"] for e in logged if e["event"] == "pass.recovered"] == ["pass.recovered"]
    assert seen_in_heartbeat == [None] + ["disk_full"] * failures
    assert progress.read_heartbeat(inst.spool).fault is None  # type: ignore[union-attr]
    assert 'ekase_faults_total{kind="disk_full"} 9.0' in exposition
    assert "ekase_fault_waiting_files 0.0" in exposition


def test_uploads_during_a_fault_neither_shorten_nor_double_the_wait(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a fault of ours lasts, every upload wakes the worker; the pass is still
    retried once per retry interval, and the interval doubles per retry, not per upload:
    a burst of uploads neither makes the worker spin against the fault nor leaves every
    client waiting a minute after it clears."""
    monkeypatch.setattr(workers, "retry_seconds_min", 0.1)
    monkeypatch.setattr(workers, "retry_seconds_max", 0.4)
    stop, wake = threading.Event(), threading.Event()
    passes: list[float] = []

    class Failing:
        def start_up(self) -> int:
            return 0

        def run_pass(self) -> PassReport:
            passes.append(time.monotonic())
            raise OSError(errno.EACCES, "Permission denied")

    loop = WorkerLoop(
        Failing, settings=inst.settings, clock=inst.clock, stop=stop, wake=wake,
        report=lambda message: None, files_in_work=lambda: 0,
    )  # fmt: skip

    def uploads() -> None:  # an upload every 10 ms for 0.75 s, then the daemon stops
        deadline = time.monotonic() + 0.75
        while time.monotonic() < deadline:
            wake.set()
            time.sleep(0.01)
        stop.set()
        wake.set()

    uploading = threading.Thread(target=uploads)
    with structlog.testing.capture_logs() as logged:
        uploading.start()
        loop.run()
        uploading.join()
    retries = [e["retry_seconds"] for e in logged if e["event"] == "pass.fault"]
    # passes at about 0, 0.1, 0.3 and 0.7 s: waits of 0.1, 0.2, 0.4 (the most), 0.4
    assert 3 <= len(passes) <= 5, retries
    assert retries == [0.1, 0.2, 0.4, 0.4, 0.4][: len(retries)]
    gaps = [b - a for a, b in itertools.pairwise(passes)]
    assert all(gap >= wait * 0.9 for gap, wait in zip(gaps, retries, strict=False)), gaps


def test_status_names_files_that_failed_and_those_in_quarantine(
    inst: Installation, poison: dict[str, BaseException]
) -> None:
    """An operator's `status` shows a file that failed on a defect of ours with how often
    and why (it is tried again), and, once set aside, the quarantined file with its error."""
    poison["ODD"] = KeyError("surprise")
    inst.drop(batch(("O-1", "10.00"), msg_id="ODD"), "odd.xml")
    inst.run()
    shown = collect(inst.env, inst.clock)
    [waiting] = shown.in_progress
    assert (waiting.file, waiting.state, waiting.attempts) == ("odd.xml", "failed", 1)
    assert waiting.error == "KeyError: 'surprise'"
    inst.run()
    inst.run()
    shown = collect(inst.env, inst.clock)
    assert shown.in_progress == ()
    [held] = shown.quarantined
    assert held.client_id == CLIENT_A and held.name.endswith("__odd.xml")
    assert held.error == "KeyError: 'surprise'"
    assert "quarantine/iestade-a/" in render(shown)


def test_a_message_the_daemon_cannot_handle_does_not_stop_it_hearing_the_worker(
    inst: Installation,
) -> None:
    """A worker's message whose handling fails in the daemon (a defect of ours) is logged
    and the worker's next messages are still heard: the failure was taken for the worker's
    end and its pipe no longer read, its sends blocking once the pipe filled, its
    clients stalled with every health check green (a review, stop 45)."""
    import multiprocessing

    runner = daemon.Daemon(inst.settings, inst.env)
    runner._heartbeat = progress.Heartbeat(inst.spool, inst.clock)
    ours, theirs = multiprocessing.Pipe()
    worker = SimpleNamespace(conn=ours, share=Share(1, 2))
    fault = {"kind": "permissions", "error": "refused", "path": "/p/out/x", "folder": "/p/out",
             "files_claimed": 1, "files_held": 0}  # fmt: skip
    theirs.send(("held", {"iestade-a": {"kind": "permissions"}}))  # a malformed hold
    theirs.send(("held", {"iestade-a": fault}))
    with structlog.testing.capture_logs() as logged:
        runner._on_message(worker)  # type: ignore[arg-type]
    assert [e["event"] for e in logged] == ["daemon.message_failed", "client.fault"], logged
    assert runner._holds()["iestade-a"].folder == "/p/out"
    ours.close()
    theirs.close()
