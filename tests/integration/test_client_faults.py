"""A fault in one client's own folder holds that client alone (SPEC §6, §9).

An out/ the gateway may not write (made immutable, a client's filesystem quota reached)
or a shelf it may not move into is that client's: its answers wait in the outbox and
its files in work/, its new files stay in in/ unbooked, it is tried again on every pass
— and every other client's files are answered in the same pass. The fault is staged on
the real spool and pipeline: the one call that moves files into a folder (`os.replace`)
refuses, as the kernel would, for a path in client A's folder only. (Tests run as root,
whom a folder's mode does not stop.)
"""

from __future__ import annotations

import builtins
import datetime as dt
import errno
import io
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select

from gateway import db
from gateway.errors import TransientError
from gateway.status import collect
from gateway.worker import Share, Worker
from tests.integration.test_disk_full import tmpfs
from tests.pipeline_fixtures import A_MAIN, B_MAIN, CLIENT_A, CLIENT_B, Batch, Installation, batch


def _refuse_into(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Callable[[], None]:
    """`os.replace` into `folder` (or below it) fails with EPERM, as for an immutable
    folder (`chattr +i`); the returned function mends it."""
    real = os.replace
    broken = [True]

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        if broken and Path(os.fsdecode(dst)).is_relative_to(folder):
            raise PermissionError(errno.EPERM, "Operation not permitted", src, None, dst)
        real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    return lambda: broken.clear()


def _b_batch(msg_id: str) -> bytes:
    return Batch(debtor=B_MAIN, msg_id=msg_id).tx(f"{msg_id}-1", "1.00").build()


def _files(inst: Installation) -> int:
    with inst.env.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.files)).scalar_one())


def test_one_clients_unwritable_out_holds_that_client_alone(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client A's out/ refuses every file: B's files are answered in the same pass, pass
    after pass; A's first file is booked and its answer waits in the outbox, its next
    file waits in in/, unclaimed and unbooked; the fault is logged once, naming A and the
    folder. Once A's out/ works again, A gets both answers in one pass, each file booked
    once."""
    mend = _refuse_into(monkeypatch, inst.outbox(CLIENT_A))
    before_a, before_b = inst.balance(A_MAIN), inst.balance(B_MAIN)
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    with structlog.testing.capture_logs() as logged:
        first = inst.run()
        assert [a.original_msg_id for a in inst.new_answers(CLIENT_B)] == ["B1"]
        assert inst.new_answers(CLIENT_A) == []
        assert [o.msg_id for o in first.outcomes] == ["B1"]  # A's is not answered yet
        assert set(first.held) == {CLIENT_A}
        assert len(inst.env.spool.in_work(CLIENT_A)) == 1  # booked, answer in the outbox
        # status says so: not "unbooked" (an operator would ask the client to send again)
        [shown] = [f for f in collect(inst.env, inst.clock).in_progress if f.file == "a1.xml"]
        assert shown.state == "booked"
        assert inst.balance(A_MAIN) == before_a - 1000

        inst.drop(batch(("A2-1", "20.00"), msg_id="A2"), "a2.xml")
        inst.drop(_b_batch("B2"), "b2.xml", CLIENT_B)
        second = inst.run()
        assert [a.original_msg_id for a in inst.new_answers(CLIENT_B)] == ["B2"]
        assert set(second.held) == {CLIENT_A}
        assert [p.name for p in inst.env.spool.waiting(CLIENT_A)] == ["a2.xml"]  # held
        assert inst.balance(A_MAIN) == before_a - 1000  # A2 not booked
    faults = [e for e in logged if e["event"] == "client.fault"]
    assert len(faults) == 1, faults
    assert faults[0]["log_level"] == "error" and faults[0]["client"] == CLIENT_A
    assert faults[0]["kind"] == "permissions"
    assert Path(faults[0]["path"]).is_relative_to(inst.outbox(CLIENT_A))
    assert not [e for e in logged if e["event"] in ("file.failed", "file.fault")]

    mend()
    with structlog.testing.capture_logs() as logged:
        third = inst.run()
    assert third.held == {}
    assert sorted(a.original_msg_id for a in inst.new_answers(CLIENT_A)) == ["A1", "A2"]
    assert [e["client"] for e in logged if e["event"] == "client.recovered"] == [CLIENT_A]
    assert inst.left_in(CLIENT_A) == [] and inst.left_in(CLIENT_B) == []
    assert inst.balance(A_MAIN) == before_a - 3000  # each booked once
    assert inst.balance(B_MAIN) == before_b - 200
    assert _files(inst) == 4
    inst.run()
    assert inst.new_answers(CLIENT_A) == [] and inst.new_answers(CLIENT_B) == []


def test_one_clients_unwritable_shelf_holds_that_client_alone(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client A's archive shelf refuses its file: A's answer is delivered, the file waits
    in work/ and A's next file in in/, while B's files are answered and shelved; once the
    shelf works again the file is shelved (not answered twice) and the next one taken."""
    mend = _refuse_into(monkeypatch, inst.spool / "archive" / CLIENT_A)
    before_a = inst.balance(A_MAIN)
    inst.drop(batch(("S1-1", "10.00"), msg_id="S1"), "s1.xml")
    inst.drop(_b_batch("T1"), "t1.xml", CLIENT_B)
    first = inst.run()
    assert set(first.held) == {CLIENT_A}
    assert [a.original_msg_id for a in inst.new_answers(CLIENT_A)] == ["S1"]
    assert [a.original_msg_id for a in inst.new_answers(CLIENT_B)] == ["T1"]
    assert inst.left_in(CLIENT_B) == []
    assert len(inst.env.spool.in_work(CLIENT_A)) == 1
    inst.drop(batch(("S2-1", "20.00"), msg_id="S2"), "s2.xml")
    assert set(inst.run().held) == {CLIENT_A}
    assert [p.name for p in inst.env.spool.waiting(CLIENT_A)] == ["s2.xml"]

    mend()
    assert inst.run().held == {}
    assert [a.original_msg_id for a in inst.new_answers(CLIENT_A)] == ["S2"]  # S1 once
    assert inst.left_in(CLIENT_A) == []
    assert len(inst.shelf_files(CLIENT_A)) == 2
    assert inst.balance(A_MAIN) == before_a - 3000


@pytest.fixture
def sealed(template: Path, tmp_path: Path) -> Iterator[Installation]:
    """An installation that seals its answers (a seal is written into out/ first)."""
    installation = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    yield installation
    installation.close()


def test_one_clients_out_on_a_filesystem_of_its_own_holds_that_client_alone(
    sealed: Installation,
) -> None:
    """Client A's out/ is a filesystem of its own (a small tmpfs mounted on it, as a
    per-client mount would be). Answers are renamed in from the spool, never copied, so
    A's answer cannot be delivered there: A is held — its file booked, its answer in the
    outbox — with a fault naming its out/, while B's file is answered in the same pass,
    pass after pass (it crashed the pass: a ValueError). Once the mount is gone, A gets
    its answer in the next pass, booked once."""
    inst = sealed
    before_a = inst.balance(A_MAIN)
    out = inst.outbox(CLIENT_A)
    with tmpfs(out, 16 * 1024):
        inst.drop(batch(("F1-1", "10.00"), msg_id="F1"), "f1.xml")
        inst.drop(_b_batch("G1"), "g1.xml", CLIENT_B)
        with structlog.testing.capture_logs() as logged:
            first = inst.run()
            assert [a.original_msg_id for a in inst.new_answers(CLIENT_B)] == ["G1"]
            assert set(first.held) == {CLIENT_A}
            assert [o.msg_id for o in first.outcomes] == ["G1"]
            assert len(inst.env.spool.in_work(CLIENT_A)) == 1  # booked, answer in the outbox
            inst.drop(_b_batch("G2"), "g2.xml", CLIENT_B)
            assert set(inst.run().held) == {CLIENT_A}
            assert [a.original_msg_id for a in inst.new_answers(CLIENT_B)] == ["G2"]
        assert not [p.name for p in out.iterdir()]  # no seal without its file either
        assert inst.balance(A_MAIN) == before_a - 1000
    [fault] = [e for e in logged if e["event"] == "client.fault"]
    assert fault["client"] == CLIENT_A and "never copied" in fault["error"], fault
    assert Path(fault["path"]) == out
    assert not [e for e in logged if e["event"] in ("pass.fault", "file.failed")], logged

    third = inst.run()  # the mount gone: out/ is the spool's folder again
    assert third.held == {}
    assert [a.original_msg_id for a in inst.new_answers(CLIENT_A)] == ["F1"]
    assert inst.left_in(CLIENT_A) == [] and inst.left_in(CLIENT_B) == []
    assert inst.balance(A_MAIN) == before_a - 1000  # booked once


def test_a_held_files_line_and_findings_tell_its_counts_and_answer(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file held back by its client's out/ is finished by a later pass: its one
    `file.processed` line and its findings file tell what it did — its counts per status,
    what it booked, the name of its answer — as for any file, not "(none: recovered after
    a restart)" with nothing counted."""
    mend = _refuse_into(monkeypatch, inst.outbox(CLIENT_A))
    inst.drop(batch(("H1-1", "10.00"), ("H1-2", "2.50"), msg_id="H1"), "h1.xml")
    with structlog.testing.capture_logs() as logged:
        assert set(inst.run().held) == {CLIENT_A}
        mend()
        inst.run()
    [answer] = inst.new_answers(CLIENT_A)
    [line] = [e for e in logged if e["event"] == "file.processed"]
    assert line["file"] == "h1.xml" and line["msg_id"] == "H1"
    assert line["counts"] == {"ACSC": 2} and line["amounts"] == {"EUR": "12.50"}, line
    assert line["answer"] == answer.path.name, line
    [shelved] = inst.shelf_files(CLIENT_A)
    findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
    assert f"Answer:      {answer.path.name}\n" in findings, findings
    assert "Transactions: ACSC 2\n" in findings
    assert "Executed:    12.50 EUR (as instructed)\n" in findings


def test_a_removed_sftp_folder_is_made_again_and_one_that_cannot_be_holds_its_client(
    inst: Installation,
) -> None:
    """An operator's slip removed client A's in/ and out/: the next pass makes them
    again (uploads to them failed, answers could not be delivered), logged once each,
    and goes on. A file in the way of B's in/ cannot be made a folder: B is held, named
    with the path, A's files are answered; once it is a folder again, B is released."""
    shutil.rmtree(inst.inbox(CLIENT_A))
    shutil.rmtree(inst.outbox(CLIENT_A))
    b_in = inst.env.spool.inbox(CLIENT_B)
    shutil.rmtree(b_in)
    b_in.write_text("not a folder\n")
    with structlog.testing.capture_logs() as logged:
        first = inst.run()
    made = [(e["client"], e["folder"]) for e in logged if e["event"] == "spool.folder_made_again"]
    assert made == [(CLIENT_A, str(inst.inbox(CLIENT_A))), (CLIENT_A, str(inst.outbox(CLIENT_A)))]
    assert inst.inbox(CLIENT_A).is_dir() and inst.outbox(CLIENT_A).is_dir()
    assert first.held[CLIENT_B].path == str(b_in)
    collect(inst.env, inst.clock)  # status: it raised NotADirectoryError reading B's in/
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    assert [o.msg_id for o in inst.run().outcomes] == ["A1"]
    assert [a.original_msg_id for a in inst.new_answers(CLIENT_A)] == ["A1"]
    b_test = inst.env.spool.trial_box(CLIENT_B)  # what holds B changes: said again
    b_in.unlink()
    shutil.rmtree(b_test)
    b_test.write_text("not a folder either\n")
    with structlog.testing.capture_logs() as logged:
        assert inst.run().held[CLIENT_B].path == str(b_test)
    assert [e["path"] for e in logged if e["event"] == "client.fault"] == [str(b_test)]
    b_test.unlink()
    with structlog.testing.capture_logs() as logged:
        assert inst.run().held == {}
    assert b_in.is_dir() and b_test.is_dir()
    assert any(e["event"] == "client.recovered" for e in logged)


def test_a_folder_removed_while_the_gateway_was_stopped_is_made_again_at_start_and_said(
    tmp_path: Path,
) -> None:
    """Client A's out/ was removed while the gateway was stopped (a disk not mounted, an
    operator's slip): the start makes it again with the same warning a pass gives (it
    did so silently); a new installation's folders are made without one."""
    with structlog.testing.capture_logs() as logged:
        inst = Installation.create(tmp_path / "gw")
    assert not [e for e in logged if e["event"] == "spool.folder_made_again"]
    out = inst.outbox(CLIENT_A)
    inst.close()
    shutil.rmtree(out)
    with structlog.testing.capture_logs() as logged:
        again = Installation.open(inst.base, inst.config, funded=False)
    made = [(e["client"], e["folder"]) for e in logged if e["event"] == "spool.folder_made_again"]
    assert made == [(CLIENT_A, str(out))] and out.is_dir()
    again.close()
    # the clients' disk not mounted: every folder of each client is said (the spool's own
    # work/ folder of the client tells it is not new)
    shutil.rmtree(inst.env.spool.inbox(CLIENT_B).parent)
    with structlog.testing.capture_logs() as logged:
        third = Installation.open(inst.base, inst.config, funded=False)
    made = [e["folder"] for e in logged if e["event"] == "spool.folder_made_again"]
    spool = third.env.spool
    assert made == [str(f(CLIENT_B)) for f in (spool.inbox, spool.outbox, spool.trial_box)]
    third.close()


def test_a_client_folder_that_cannot_be_seen_at_start_stops_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client's in/ that the service cannot even look at (EACCES on stat; root is not
    refused by permissions here, so the refusal is made by hand) does not stop the start:
    its out/ and test/ are still made, and the pass says which folder holds the client."""
    inst = Installation.create(tmp_path / "gw")
    spool = inst.env.spool
    inst.close()
    for folder in (spool.inbox(CLIENT_A), spool.outbox(CLIENT_A), spool.trial_box(CLIENT_A)):
        shutil.rmtree(folder)
    real = Path.is_dir

    def is_dir(path: Path) -> bool:
        if path == spool.inbox(CLIENT_A):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    again = Installation.open(inst.base, inst.config, funded=False)
    assert real(spool.outbox(CLIENT_A)) and real(spool.trial_box(CLIENT_A))
    problem = spool.make_sftp_folders(CLIENT_A, None)
    assert problem is not None and problem[0] == spool.inbox(CLIENT_A)
    again.close()


def test_at_start_a_clients_folder_that_cannot_be_made_holds_that_client_alone(
    tmp_path: Path,
) -> None:
    """Client B's in/ cannot be made when `scan --once` starts (a file in its way; in an
    OpenSSH installation, a new client's folders before install.sh made them): the command
    refused to start for every client (exit 2, and the unit's RestartPreventExitStatus=2
    kept the daemon down after a reboot). Now B is held, logged, and A's file answered."""
    from tests.integration.test_readahead import _installation, _scan

    inst = _installation(tmp_path / "gw")
    b_in = inst.env.spool.inbox(CLIENT_B)
    shutil.rmtree(b_in)
    b_in.write_text("not a folder\n")
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    done = _scan(inst.config)
    assert done.returncode == 0, done.stderr
    assert "processed 1 file(s): 1 answered" in done.stdout, done.stdout
    assert len(list(inst.outbox(CLIENT_A).glob("*.xml"))) == 1
    [fault] = [json.loads(x) for x in done.stderr.splitlines() if '"client.fault"' in x]
    assert fault["client"] == CLIENT_B and fault["path"] == str(b_in), fault


def test_a_file_its_client_made_unreadable_holds_that_client_alone(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenSSH upload whose client set its mode to 000: the gateway cannot open it,
    and that stopped every client's pass as a fault of ours (`pass.fault`). It is the
    client's to mend: that client is held, the others answered. (Tests run as root, whom
    a mode does not stop: the kernel's refusal is staged on `os.open`.)"""
    unreadable = inst.inbox(CLIENT_A) / "chmod0.xml"
    real = os.open

    def refusing(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if Path(os.fsdecode(path)) == unreadable:
            raise PermissionError(errno.EACCES, "Permission denied", str(unreadable))
        return real(path, flags, *args, **kw)

    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "chmod0.xml")
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    monkeypatch.setattr(os, "open", refusing)
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert result.held[CLIENT_A].path == str(unreadable)
    monkeypatch.undo()  # the client mends its mode
    assert [o.msg_id for o in inst.run().outcomes] == ["A1"]


def refuse_within(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Callable[[], None]:
    """`folder` made mode 000 by an operator: it cannot be listed, nor anything in it
    reached (the kernel's refusal staged on the calls that reach a path: root is let
    through by a mode); the returned function mends it."""
    broken = [True]

    def refused(arg: Any, call: str) -> bool:
        if not broken or not isinstance(arg, str | bytes | os.PathLike):
            return False
        path = Path(os.fsdecode(arg))
        if path == folder:  # itself: it can be seen, not looked into
            return call in ("scandir", "listdir", "open")
        return path.is_relative_to(folder)

    def refusing(call: str, real: Any) -> Callable[..., Any]:
        def refuse(*args: Any, **kw: Any) -> Any:
            for arg in args[:2]:
                if refused(arg, call):
                    raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(arg))
            return real(*args, **kw)

        return refuse

    for call in ("stat", "lstat", "scandir", "listdir", "open", "mkdir", "replace", "unlink"):
        monkeypatch.setattr(os, call, refusing(call, getattr(os, call)))
    opening = refusing("open", io.open)
    monkeypatch.setattr(io, "open", opening)
    monkeypatch.setattr(builtins, "open", opening)
    return lambda: broken.clear()


@pytest.mark.parametrize("folder", ["inbox", "trial_box", "work"])
def test_a_clients_folder_that_cannot_be_listed_holds_that_client_alone(
    inst: Installation, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    """A client's in/, test/ or work/ the service may not list (an operator's chmod, an
    OpenSSH chroot's owner changed): the pass failed for every client of the worker as a
    fault of ours, again on every pass. Now that client is held, the others answered."""
    refused = getattr(inst.env.spool, folder)(CLIENT_A)
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    mend = refuse_within(monkeypatch, refused)
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert result.held[CLIENT_A].folder == str(refused)
    mend()  # the operator mends it
    assert [o.msg_id for o in inst.run().outcomes] == ["A1"]


def test_a_daemon_worker_holds_a_client_whose_in_cannot_be_listed(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in the daemon: its worker lists the waiting files itself, to let uploads
    settle (`Worker._candidates`)."""
    worker = Worker(inst.env, threading.Event(), Share(0, 1))
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    mend = refuse_within(monkeypatch, inst.env.spool.inbox(CLIENT_A))
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    report = worker.run_pass()
    assert report.processed == 1 and list(report.held) == [CLIENT_A]
    assert len(inst.new_answers(CLIENT_B)) == 1 and inst.new_answers(CLIENT_A) == []
    mend()
    assert worker.run_pass().processed == 1 and len(inst.new_answers(CLIENT_A)) == 1


def test_status_and_metrics_read_past_a_clients_in_that_cannot_be_listed(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator asks `status` (or Prometheus scrapes) because a client is held: they
    failed on the refusing in/ as the pass did. They show the others' waiting files."""
    from gateway.metrics import _OnScrape

    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    refuse_within(monkeypatch, inst.env.spool.inbox(CLIENT_A))
    shown = {c.client_id: c.waiting for c in collect(inst.env, inst.clock).clients}
    assert shown[CLIENT_B] == 1 and shown[CLIENT_A] == 0
    series = {m.name: m for m in _OnScrape(inst.settings, inst.env.engine).collect()}
    waiting = {s.labels["client"]: s.value for s in series["ekase_waiting_files"].samples}
    assert waiting[CLIENT_B] == 1 and CLIENT_A not in waiting


def test_a_clients_awaiting_folder_that_refuses_holds_that_client_alone(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """awaiting/<client> (its batches waiting for signatures) refusing: each pass tidies
    it (`awaiting_shelf.tidy`), and that failed every client's pass (outside review)."""
    worker = Worker(inst.env, threading.Event(), Share(0, 1))
    awaiting = inst.env.spool.awaiting(CLIENT_A)
    awaiting.mkdir(parents=True, exist_ok=True)
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    mend = refuse_within(monkeypatch, awaiting)
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    report = worker.run_pass()
    assert report.processed == 1 and list(report.held) == [CLIENT_A]
    assert report.held[CLIENT_A].folder == str(awaiting)
    assert len(inst.new_answers(CLIENT_B)) == 1
    mend()
    assert worker.run_pass().held == {}


def test_status_reads_past_a_clients_work_that_cannot_be_listed(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass holds a client whose work/ refuses; `status`, run because of it, failed on
    the same folder (outside review)."""
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    refuse_within(monkeypatch, inst.env.spool.work(CLIENT_A))
    shown = {c.client_id: c for c in collect(inst.env, inst.clock).clients}
    assert shown[CLIENT_B].waiting == 1 and shown[CLIENT_B].in_progress == 0


def test_the_spools_own_tree_refusing_is_a_fault_of_the_machine(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool's work/ (every client's work/<client> below it) refusing is the machine's
    fault, one folder for the operator to mend: it stops the pass as before, rather than
    holding every client for a folder of its own (outside review)."""
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    refuse_within(monkeypatch, inst.env.spool.root / "work")
    with pytest.raises(PermissionError):  # the pass's fault, logged and retried (`faults`)
        inst.run()
    assert inst.new_answers(CLIENT_B) == []


def test_a_held_clients_files_it_cannot_count_are_said_unknown(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`client.fault` said `files_held=0` for a client whose in/ cannot be listed, while
    files waited there (outside review): not known is said as such (null)."""
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    refuse_within(monkeypatch, inst.env.spool.inbox(CLIENT_A))
    with structlog.testing.capture_logs() as logged:
        inst.run()
    [fault] = [e for e in logged if e["event"] == "client.fault"]
    assert fault["files_held"] is None and fault["files_claimed"] == 0, fault


def test_a_fault_of_the_spools_work_tree_is_told_without_failing_again(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker tells a fault of the machine with the files claimed in work/ (`pass.fault`):
    counting them on a work/ tree that refuses — the fault itself — raised again in the
    worker's fault handling. It counts none there."""
    from gateway.workers import files_in_work

    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    inst.run()
    refuse_within(monkeypatch, inst.env.spool.root / "work")
    assert files_in_work(inst.env.spool, inst.settings.clients) == 0


def test_the_end_of_day_with_a_held_clients_out_refusing_stops_no_pass(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A's out/ refuses (immutable): A is held, its answer waits in the
    outbox. The end of day delivered every client's messages with no hold: A's waiting
    answer failed the statements and the leader's pass, each day the hold lasted. Its
    messages now wait in the outbox; B's statements and answers go out."""
    worker = Worker(inst.env, threading.Event(), Share(0, 1))
    _refuse_into(monkeypatch, inst.outbox(CLIENT_A))
    inst.drop(batch(("A1-1", "10.00"), msg_id="A1"), "a1.xml")
    inst.clock.set(inst.clock.now() + dt.timedelta(seconds=inst.settings.settle_seconds))
    assert list(worker.run_pass().held) == [CLIENT_A]  # booked; its answer waits
    zone = inst.settings.timezone
    evening = dt.datetime.combine(inst.clock.now().date(), dt.time(18, 45), zone)
    inst.clock.set(evening)
    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    inst.clock.set(evening + dt.timedelta(seconds=inst.settings.settle_seconds))
    report = worker.run_pass()
    assert list(report.held) == [CLIENT_A] and len(inst.new_answers(CLIENT_B)) == 1
    assert list(inst.outbox(CLIENT_B).glob("*camt.053*.xml"))


@pytest.mark.parametrize("shelf", ["rejected", "quarantine"])
def test_status_and_metrics_read_past_a_clients_shelf_that_refuses(
    inst: Installation, monkeypatch: pytest.MonkeyPatch, shelf: str
) -> None:
    """(Outside review.) A's rejected/ or quarantine/ folder refusing (mode 000) failed
    `status` and the metrics for every client."""
    from gateway.metrics import _OnScrape

    inst.drop(_b_batch("B1"), "b1.xml", CLIENT_B)
    refused = inst.spool / shelf / CLIENT_A
    refused.mkdir(parents=True, exist_ok=True)
    refuse_within(monkeypatch, refused)
    shown = {c.client_id: c.waiting for c in collect(inst.env, inst.clock).clients}
    assert shown[CLIENT_B] == 1
    series = {m.name: m for m in _OnScrape(inst.settings, inst.env.engine).collect()}
    waiting = {s.labels["client"]: s.value for s in series["ekase_waiting_files"].samples}
    assert waiting[CLIENT_B] == 1


def test_the_spools_shelf_tree_not_writable_is_a_fault_of_the_machine(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) The spool's rejected/ cannot be written (root's after a restore,
    mode 0755): a client's first rejection makes rejected/<client> and is refused there.
    That held the client, then the next one rejected, each `client.fault` naming a folder
    that is not there: it is the machine's fault, one folder to mend."""
    tree = inst.spool / "rejected"
    real = os.mkdir

    def mkdir(path: Any, *args: Any, **kw: Any) -> None:
        if Path(os.fsdecode(path)).parent == tree:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        real(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    inst.drop(b"not xml", "junk.xml", CLIENT_B)
    with pytest.raises(TransientError):  # the pass's fault, logged and retried
        inst.run()
