"""A client's files run in the order they were received (`gateway/arrival.py`): an outside
review's cases, each of which ran a later file ahead of an earlier one."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from gateway import newfile
from gateway.files import locked
from gateway.sftp.receipts import UploadReceipt, write_receipt
from tests.pipeline_fixtures import A_SMALL, CLIENT_A, Batch, Installation


def _upload(inst: Installation, data: bytes, name: str, trial: bool = False) -> Path:
    """An upload as the built-in server leaves it: the file in in/ (`trial`: test/) and its
    receipt, received now."""
    spool = inst.env.spool
    box = spool.trial_box(CLIENT_A) if trial else spool.inbox(CLIENT_A)
    receipts = spool.receipts(CLIENT_A) / ("test" if trial else "")
    write_receipt(UploadReceipt(
        client_id=CLIENT_A, sftp_user="iestade-a-erp", source_ip="192.0.2.7",
        key_fingerprint="SHA256:test", file_name=name, uploaded_as=name,
        size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        received_at=inst.clock.now(), path=box / name, receipt_path=receipts / f"{name}.json",
    ))  # fmt: skip
    path = box / name
    path.with_name(f".{name}.part").write_bytes(data)
    path.with_name(f".{name}.part").rename(path)
    return path


def _upload_big_80(inst: Installation) -> None:
    """BIG, 80.00 of A_SMALL's in 4,000 payments: a file `scan --once` reads ahead."""
    big = Batch(debtor=A_SMALL, msg_id="BIG")
    for n in range(4000):
        big.tx(f"BIG-{n}", "0.02")
    _upload(inst, big.build(), "big.xml")


def _pays_80(msg_id: str) -> bytes:
    # A_SMALL holds 100.00 without overdraft: only one of two such files can pay.
    return Batch(debtor=A_SMALL, msg_id=msg_id).tx(f"{msg_id}-1", "80.00").build()


def test_a_preserved_timestamp_does_not_reorder_a_clients_files(
    inst: Installation,
) -> None:
    """FIRST is received at 10:00, SECOND at 10:01; SECOND's client kept its local
    modification time (WinSCP's default, `put -p`: the built-in server's setstat applies
    it to the file in /in), an hour earlier. FIRST was received first and must pay;
    SECOND is the one short of funds (AM04)."""
    _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    second = _upload(inst, _pays_80("SECOND"), "second.xml")
    earlier = (inst.clock.now() - dt.timedelta(hours=1)).timestamp()
    os.utime(second, (earlier, earlier))  # what session.setstat does on /in/second.xml
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["FIRST", "SECOND"]


def test_a_clients_later_file_waits_while_another_process_runs_its_earlier_one(
    inst: Installation,
) -> None:
    """Another process (`scan --once` beside the daemon, a second node on the spool) has
    claimed A's FIRST and is still running it (its lock held in work/). This pass must
    not book A's SECOND, received after it: it could commit first and spend FIRST's
    money."""
    first = _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    claim = inst.env.spool.claim(CLIENT_A, first, inst.clock.now())
    assert claim is not None
    with contextlib.ExitStack() as other_process:
        assert other_process.enter_context(locked(claim.path))
        result = inst.run()
        assert [o.msg_id for o in result.outcomes] == []  # SECOND waits behind FIRST
    # once the other process is gone, both run in the order they came
    assert [o.msg_id for o in inst.run().outcomes] == ["FIRST", "SECOND"]


def test_a_clients_later_file_waits_behind_its_file_that_failed(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FIRST trips a defect of ours once (a transient bug; it waits in work/ for the
    next pass); SECOND, received after it, ran in the same pass and spent the money
    FIRST was sent to pay: FIRST then comes back AM04."""
    issue, failed = newfile._issue_first_report, []

    def failing(*args: Any, **kwargs: Any) -> Any:
        if args[3].msg_id == "FIRST" and not failed:
            failed.append(1)
            raise KeyError("surprise")
        return issue(*args, **kwargs)

    monkeypatch.setattr(newfile, "_issue_first_report", failing)
    _upload(inst, _pays_80("FIRST"), "first.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("SECOND"), "second.xml")
    assert inst.run().outcomes == []  # FIRST failed once; SECOND waits behind it
    done = inst.run().outcomes
    assert [(o.msg_id, o.group_status) for o in done] == [("FIRST", "ACSC"), ("SECOND", "RJCT")]


def test_scan_once_read_ahead_does_not_run_ahead_of_a_held_clients_earlier_file(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's out/ refuses (an operator's chmod). Pass 1: E1 is booked, its answer owed
    (A held). E2 is left unbooked in work/ by a run that was killed after claiming it. Then A
    uploads BIG and `scan --once` reads it ahead (`readahead.start`). A is still held:
    E2 waits — and so must BIG, received after it; it was run (`dayorder._run` runs
    `first` via `pipeline.run`, past the held check in `Pipeline.process`)."""
    from sqlalchemy import select

    from gateway import db, readahead
    from tests.integration.test_client_faults import refuse_within

    mend = refuse_within(monkeypatch, inst.env.spool.outbox(CLIENT_A))
    _upload(inst, Batch(msg_id="E1").tx("E1-1", "1.00").build(), "e1.xml")
    assert CLIENT_A in inst.run().held  # E1 booked, its answer owed
    inst.clock.advance(dt.timedelta(seconds=1))
    # E2 claimed by a run that stopped before booking it (killed): unbooked in work/
    e2 = _upload(inst, _pays_80("E2"), "e2.xml")
    assert inst.env.spool.claim(CLIENT_A, e2, inst.clock.now()) is not None
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload_big_80(inst)
    first = readahead.start(inst.settings, inst.clock.now())
    assert isinstance(first, readahead.ReadAhead) and first.claim.original_name == "big.xml"
    result = inst.pipeline.run_once(first)
    assert CLIENT_A in result.held
    with inst.env.engine.connect() as conn:
        recorded = list(conn.execute(select(db.files.c.msg_id).order_by(db.files.c.id)).scalars())
    assert recorded == ["E1"]  # neither E2 nor BIG, received after it, is booked
    mend()


def test_a_trial_received_first_is_checked_before_a_later_real_file(
    inst: Installation,
) -> None:
    """A uploads TRIAL to /test at 10:00 (80.00 of A_SMALL's 100.00), then REAL to /in at
    10:01 (80.00). One pass: the trial, received first, must be checked against the funds
    of its moment (ACCP); it ran after REAL (`Pipeline.waiting_of`: all of in/, then
    test/) and says the funds are short."""
    _upload(inst, _pays_80("TRIAL"), "trial.xml", trial=True)
    inst.clock.advance(dt.timedelta(minutes=1))
    _upload(inst, _pays_80("REAL"), "real.xml")
    result = inst.run()
    assert [(o.msg_id, o.shelf) for o in result.outcomes] == [
        ("TRIAL", "trials"), ("REAL", "archive")
    ]
