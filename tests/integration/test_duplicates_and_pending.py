"""Uploading twice, and payments that wait (SPEC §6).

A client that uploads the same bytes again (an ERP retry) must not pay twice and must
get the original answer again; a reused MsgId with other content is DU01. Payments
dated in the future or received after their cut-off wait (PDNG) and execute at the
start of their business day, judged then (AM04 if the money has gone meanwhile), each
run reported by a further pain.002 for the same original file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog.testing
from sqlalchemy import func, select

from gateway import pending
from gateway.outbound.seal import verify_file
from gateway.samples import SamplePmtInf, SampleTx
from gateway.sftp.receipts import UploadReceipt, receipt_path, write_receipt
from ledger.schema import transfers
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    EXTERNAL,
    EXTERNAL_BIC,
    PAIN002,
    RIGA,
    Batch,
    Installation,
)


def transfer_count(inst: Installation) -> int:
    with inst.env.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(transfers)).scalar_one())


def ext(e2e: str, amount: str) -> SampleTx:
    return SampleTx(e2e, amount, EXTERNAL, creditor_bic=EXTERNAL_BIC)


def internal(e2e: str, amount: str) -> SampleTx:
    return SampleTx(e2e, amount, B_MAIN)


def riga(day: str, clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=RIGA)


# -- the same bytes again --------------------------------------------------------------------

GOOD = Batch(msg_id="PAY-1").tx("D-1", "10.00").tx("D-2", "20.00").build()
BROKEN = b"<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'>"


@pytest.mark.parametrize(
    ("data", "shelf"), [(GOOD, "archive"), (BROKEN, "rejected")], ids=["accepted", "rejected"]
)
def test_same_bytes_again_get_the_original_answer_and_move_no_money(
    data: bytes, shelf: str, inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """An ERP that uploads the same file again (another name, a minute later) is not
    executed again: it receives the original pain.002 once more, same MsgId inside, and
    the second copy is kept in duplicates/."""
    first = inst.submit(data, name="pay.xml")
    assert first.shelf is not None and first.shelf.parts[-4] == shelf
    balances, transfers_before = inst.balances(), transfer_count(inst)

    inst.clock.advance(dt.timedelta(minutes=1))
    again = inst.submit(data, name="pay-retry.xml")
    assert_valid(again.path, PAIN002)
    assert again.path.name != first.path.name
    assert again.path.read_bytes() == first.path.read_bytes()
    assert again.msg_id == first.msg_id
    assert again.shelf is not None and again.shelf.parts[-4] == "duplicates"
    assert again.shelf.read_bytes() == data
    assert inst.balances() == balances
    assert transfer_count(inst) == transfers_before


def test_same_bytes_after_their_pending_payments_ran_get_their_original_reports_again(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """SPEC §6 delivers the original final pain.002 once more and §8 keeps a re-delivery's
    MsgId: once a later run booked what the first report said was waiting, a repeat gets
    the file's reports as they were sent — the first (NOW-1 booked, LATER-1 waiting) and
    the follow-up that booked LATER-1, in that order, each byte for byte with its MsgId:
    together every payment's final status, which neither lists alone — and no report
    with a MsgId of its own."""
    inst.clock.set(riga("2026-11-25", "10:00"))
    later = SamplePmtInf(
        pmt_inf_id="P-LATER", debtor_iban=A_MAIN, execution_date="2026-11-26",
        transactions=[internal("LATER-1", "3.00")],
    )  # fmt: skip
    batch = Batch(msg_id="TWO-DAYS").tx("NOW-1", "2.00", B_MAIN)
    batch.extra_pmts.append(later)
    data = batch.build()
    first = inst.submit(data, name="two.xml")
    assert first.statuses() == {"NOW-1": "ACSC", "LATER-1": "PDNG"}
    inst.clock.set(riga("2026-11-26", "08:00"))
    inst.run()
    [follow_up] = inst.new_answers()
    assert follow_up.statuses() == {"LATER-1": "ACSC"} and follow_up.group_status == "ACSC"
    balances = inst.balances()
    inst.drop(data, "two-again.xml")
    [outcome] = inst.run().outcomes
    again = inst.new_answers()
    assert [a.msg_id for a in again] == [first.msg_id, follow_up.msg_id]
    for copy, original in zip(again, (first, follow_up), strict=True):
        assert_valid(copy.path, PAIN002)
        assert copy.path.name != original.path.name
        assert copy.path.read_bytes() == original.path.read_bytes()
    assert outcome.shelf == "duplicates"
    assert outcome.answer == ", ".join(a.path.name for a in again)
    assert inst.balances() == balances


def _upload_with_receipt(inst: Installation, data: bytes, name: str, source: str) -> dict[str, str]:
    """What the built-in server leaves for one upload: its receipt (who, from where, with
    which key, when), then the file under its final name. Returns the receipt."""
    received = inst.clock.now()
    receipt = UploadReceipt(
        client_id=CLIENT_A,
        sftp_user="a-erp",
        source_ip=source,
        key_fingerprint=f"SHA256:key-of-{source}",
        file_name=name,
        uploaded_as=name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        received_at=received,
        path=inst.inbox() / name,
        receipt_path=receipt_path(inst.spool, CLIENT_A, name),
    )
    write_receipt(receipt)
    return receipt.to_json()


def _snapshot(paths: list[Path]) -> dict[Path, tuple[bytes, int, int]]:
    """Content, modification time and inode of each file: what 'untouched' means."""
    found = {}
    for path in paths:
        for part in (path, *(path.with_name(path.name + s) for s in SIDECARS)):
            if part.exists():
                info = part.stat()
                found[part] = (part.read_bytes(), info.st_mtime_ns, info.st_ino)
    return found


SIDECARS = (".findings.txt", ".receipt.json", ".sig")


def test_every_upload_of_the_same_bytes_keeps_its_own_file_findings_and_receipt(
    template: Path, tmp_path: Path
) -> None:
    """An ERP sends all-valid.xml three times on one day (twice within one second): the
    treasury keeps all three uploads, each with its own findings and its own receipt
    (time, address, key), the first in archive/ with its seal and the repeats in
    duplicates/; nothing shelved earlier is replaced or touched."""
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        sources = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        shelved: list[Path] = []
        receipts = []
        earlier: dict[Path, tuple[bytes, int, int]] = {}
        for n, source in enumerate(sources):
            if n == 1:  # the third comes within the same second as the second
                inst.clock.advance(dt.timedelta(minutes=1))
            receipts.append(_upload_with_receipt(inst, GOOD, "all-valid.xml", source))
            answer = inst.submit(GOOD, name="all-valid.xml")
            assert answer.shelf is not None
            shelved.append(answer.shelf)
            assert _snapshot(shelved[:-1]) == earlier, (
                f"upload {n + 1} changed what was shelved before it"
            )
            earlier = _snapshot(shelved)

        assert [p.parts[-4] for p in shelved] == ["archive", "duplicates", "duplicates"]
        assert len(set(shelved)) == 3 and inst.shelf_files() == sorted(shelved)
        cert = inst.settings.signing.certificate
        for path, receipt, source in zip(shelved, receipts, sources, strict=True):
            assert path.read_bytes() == GOOD
            kept = json.loads(path.with_name(path.name + ".receipt.json").read_text())
            assert kept == receipt
            findings = path.with_name(path.name + ".findings.txt").read_text()
            assert f"from {source}" in findings and "all-valid.xml" in findings
        seal = verify_file(shelved[0], trusted_certs=[cert], now=inst.clock.now())
        assert seal.ok and seal.properties["source_address"] == sources[0]
        assert inst.balance(A_MAIN) == 10_000_000 - 3000, "paid once"
        assert inst.left_in(CLIENT_A) == []
    finally:
        inst.close()


def test_two_different_files_rejected_under_one_name_both_stay(inst: Installation) -> None:
    """Two different broken files sent as pay.xml on one day are both kept in rejected/,
    each with its own findings."""
    first = inst.submit(BROKEN, name="pay.xml")
    kept = _snapshot([first.shelf]) if first.shelf else {}
    second = inst.submit(BROKEN + b"<!-- other -->", name="pay.xml")
    assert first.shelf is not None and second.shelf is not None
    assert first.shelf != second.shelf
    assert [first.shelf.parts[-4], second.shelf.parts[-4]] == ["rejected", "rejected"]
    assert _snapshot([first.shelf]) == kept
    assert second.shelf.read_bytes() == BROKEN + b"<!-- other -->"


def test_same_bytes_twice_in_one_pass_each_get_an_answer(inst: Installation) -> None:
    """Two identical uploads waiting together (an ERP that sent its file twice) are both
    answered in the same pass, and paid once. A pass handles a file in well under a
    second, so both answers are made within the same second."""
    inst.drop(GOOD, "01-pay.xml")
    inst.drop(GOOD, "02-pay-again.xml")
    result = inst.run()
    assert [o.shelf for o in result.outcomes] == ["archive", "duplicates"]
    answers = inst.new_answers()
    assert len(answers) == 2
    assert answers[0].path.read_bytes() == answers[1].path.read_bytes()
    assert inst.balance(A_MAIN) == 10_000_000 - 3000
    assert inst.left_in(CLIENT_A) == []


def test_a_repeated_upload_interrupted_by_a_crash_is_still_answered(
    inst: Installation,
) -> None:
    """The daemon stops after taking a repeated upload into work/ but before answering it;
    after the restart that upload still gets its answer (the original pain.002 again)
    and nothing is paid twice."""
    first = inst.submit(GOOD, name="pay.xml")
    inst.clock.advance(dt.timedelta(minutes=1))
    path = inst.drop(GOOD, "pay-retry.xml")
    # What a crash leaves: the file claimed into work/, nothing committed for it.
    claim = inst.env.spool.claim(CLIENT_A, path, inst.clock.now())
    assert claim is not None and claim.path.parent == inst.env.spool.work(CLIENT_A)

    inst.clock.advance(dt.timedelta(minutes=1))
    inst.run()
    answers = inst.new_answers()
    assert len(answers) == 1, "the interrupted upload must be answered after the restart"
    assert answers[0].path.read_bytes() == first.path.read_bytes()
    assert inst.balance(A_MAIN) == 10_000_000 - 3000
    assert inst.left_in(CLIENT_A) == []


def test_reused_msg_id_with_other_content_is_du01(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """A different file under a MsgId already accepted is refused as a whole (DU01), and
    the first file's payments stay booked exactly once. Its answer echoes the MsgId of
    the file it repeats, so it names the upload it answers too (an ERP that matched the
    answer by OrgnlMsgId alone took it for the first file's: tester B, stop 45)."""
    inst.submit(GOOD, name="pay.xml")
    changed = Batch(msg_id="PAY-1").tx("D-1", "10.00").tx("D-2", "20.01").build()
    answer = inst.submit(changed, name="pay-changed.xml")
    assert_valid(answer.path, PAIN002)
    assert answer.group_status == "RJCT" and answer.group_reasons == ["DU01"]
    assert answer.original_msg_id == "PAY-1"
    sha256 = hashlib.sha256(changed).hexdigest()
    assert f"file pay-changed.xml, SHA-256 {sha256}" in " ".join(answer.group_info)
    assert answer.shelf is not None and answer.shelf.parts[-4] == "rejected"
    assert inst.balance(A_MAIN) == 10_000_000 - 3000


# -- when a file was received -----------------------------------------------------------------


@pytest.mark.parametrize("receipted", [True, False], ids=["built-in server", "OpenSSH"])
def test_a_files_own_times_never_make_it_received_before_a_cut_off(
    receipted: bool, inst: Installation
) -> None:
    """A client can set an upload's times (`put -p`, WinSCP keep the local file's): a
    file uploaded at 16:00, after the 15:30 cut-off for external payments, with its
    modification time set to 13:00 is received at 16:00 all the same — by its receipt, or
    without one by when it last changed in in/ — and its external payment waits."""
    inst.clock.set(riga("2026-11-25", "16:00"))
    data = Batch(msg_id="BACKDATED").tx("EXT-1", "10.00").build()
    if receipted:
        _upload_with_receipt(inst, data, "backdated.xml", "192.0.2.7")
        path = inst.inbox() / "backdated.xml"
        path.write_bytes(data)
    else:
        path = inst.drop(data, "backdated.xml")
    three_hours_before = riga("2026-11-25", "13:00").timestamp()
    os.utime(path, (three_hours_before, three_hours_before))
    inst.run()
    [answer] = inst.new_answers()
    assert answer.statuses() == {"EXT-1": "PDNG"}
    assert answer.tx("EXT-1").additional_info == [
        "received 16:00, after the 15:30 cut-off for external payments; executes 2026-11-26"
    ]


def test_what_an_upload_leaves_in_the_archive_is_read_only(tmp_path: Path) -> None:
    """SPEC §5: the archive is immutable — the original, its findings, its receipt (who
    uploaded it, from where, when) and its seal alike. The receipt (0640) and the seal
    (0644) were left writable beside a read-only original (testers)."""
    inst = Installation.create(tmp_path / "gw", need_sealer=True)
    try:
        data = Batch(msg_id="KEPT").tx("E-1", "1.00", B_MAIN).build()
        _upload_with_receipt(inst, data, "kept.xml", "192.0.2.7")
        (inst.inbox() / "kept.xml").write_bytes(data)
        inst.run()
        [original] = inst.shelf_files()
    finally:
        inst.close()
    parts = sorted(original.parent.glob(f"{original.name}*"))
    assert {p.name.removeprefix(original.name) for p in parts} == {
        "", ".findings.txt", ".receipt.json", ".sig"
    }, parts
    for part in parts:
        mode = stat.S_IMODE(part.stat().st_mode)
        assert mode & 0o222 == 0, (part.name, oct(mode))


# -- pending payments ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [pending.chunk_payments, 1])
def test_pending_payments_execute_on_their_day_judged_then(
    template: Path, tmp_path: Path, assert_valid: Callable[[object, str], None],
    monkeypatch: pytest.MonkeyPatch, chunk: int,
) -> None:
    """Wednesday 16:00 (after the external cut-off, before the internal one) a file asks
    for: an internal payment today (booked now), an external one today (waits for
    Thursday), and two for Saturday (wait for Monday). Before the internal cut-off another
    file spends the money, so on Thursday the external payment fails with AM04; on Monday the
    Saturday payments are booked, the internal one credited to client B's account.
    Each run's outcome reaches the client as a further pain.002 for the same file. A run
    reads its due payments a chunk at a time (here also one at a time): the same."""
    monkeypatch.setattr(pending, "chunk_payments", chunk)
    inst = Installation.copy_of(
        template, tmp_path / "gw", now=riga("2026-11-25", "16:00"), need_sealer=False
    )
    try:
        _pending_scenario(inst, assert_valid)
    finally:
        inst.close()


def _pending_scenario(inst: Installation, assert_valid: Callable[[object, str], None]) -> None:
    clearing = inst.clearing("EUR")
    start = inst.balances()
    today = SamplePmtInf(
        pmt_inf_id="P-TODAY",
        debtor_iban=A_SMALL,
        execution_date="2026-11-25",
        transactions=[internal("INT-NOW", "10.00"), ext("EXT-LATE", "60.00")],
    )
    saturday = SamplePmtInf(
        pmt_inf_id="P-SAT",
        debtor_iban=A_SMALL,
        execution_date="2026-11-28",
        transactions=[ext("SAT-EXT", "20.00"), internal("SAT-INT", "5.00")],
    )
    first = inst.submit(Batch(msg_id="PLAN-1", extra_pmts=[today, saturday]).build())
    assert_valid(first.path, PAIN002)
    assert first.statuses() == {
        "INT-NOW": "ACSC",
        "EXT-LATE": "PDNG",
        "SAT-EXT": "PDNG",
        "SAT-INT": "PDNG",
    }
    assert first.group_status == "ACCP"
    assert first.pmt_statuses() == {"P-TODAY": "ACCP", "P-SAT": "ACCP"}
    assert [t.acct_svcr_ref is not None for t in first.transactions()] == [
        True,
        False,
        False,
        False,
    ]
    assert inst.balance(A_SMALL) == start[A_SMALL] - 1000
    assert inst.balance(B_MAIN) == start[B_MAIN] + 1000

    # Wednesday 17:00, before the internal cut-off: another file spends 40.00 at once.
    inst.clock.set(riga("2026-11-25", "17:00"))
    spend = Batch(msg_id="SPEND", debtor=A_SMALL).tx("SPEND-1", "40.00", B_MAIN).build()
    assert inst.submit(spend, "s.xml").statuses() == {"SPEND-1": "ACSC"}

    # Later on Wednesday and at night nothing is due.
    inst.clock.set(riga("2026-11-25", "23:00"))
    assert inst.run().files_with_pending_executed == []
    assert inst.new_answers() == []

    # Thursday 08:00: the 60.00, judged now, no longer fits (AM04).
    inst.clock.set(riga("2026-11-26", "08:00"))
    result = inst.run()
    assert result.outcomes == [] and len(result.files_with_pending_executed) == 1
    [thursday] = inst.new_answers()
    assert thursday.original_msg_id == "PLAN-1"
    assert_valid(thursday.path, PAIN002)
    assert thursday.msg_id != first.msg_id
    assert thursday.statuses() == {"EXT-LATE": "RJCT"}, "a further report lists what changed"
    # ... and its group status is the whole file's now (one booked, one refused, two due)
    assert thursday.group_status == "PART"
    late = thursday.tx("EXT-LATE")
    assert late.reasons == ["AM04"] and late.additional_info and late.acct_svcr_ref is None
    assert inst.balance(A_SMALL) == start[A_SMALL] - 1000 - 4000

    # Friday and the weekend: the Saturday payments are not due yet / not a business day.
    for moment in (riga("2026-11-27", "08:00"), riga("2026-11-28", "10:00")):
        inst.clock.set(moment)
        assert inst.run().files_with_pending_executed == []
    assert inst.new_answers() == []

    # Monday: both Saturday payments are booked (50.00 - 25.00 leaves 25.00).
    inst.clock.set(riga("2026-11-30", "07:00"))
    inst.run()
    [monday] = inst.new_answers()
    assert_valid(monday.path, PAIN002)
    assert monday.original_msg_id == "PLAN-1"
    assert monday.statuses() == {"SAT-EXT": "ACSC", "SAT-INT": "ACSC"}
    assert monday.group_status == "PART"  # the file's: EXT-LATE was refused on Thursday
    assert monday.pmt_statuses() == {"P-SAT": "ACSC"}  # all of that payment information's
    assert all(t.acct_svcr_ref for t in monday.transactions())
    refs = {t.acct_svcr_ref for t in first.transactions() + monday.transactions()}
    assert len(refs - {None}) == 3

    end = inst.balances()
    assert end[A_SMALL] == start[A_SMALL] - 1000 - 4000 - 2000 - 500
    assert end[B_MAIN] == start[B_MAIN] + 1000 + 4000 + 500
    assert end[clearing] == start[clearing] + 2000
    inst.env.ledger.check_invariants()

    # Running again the same day changes nothing and reports nothing.
    assert inst.run().files_with_pending_executed == []
    assert inst.new_answers() == []
    assert inst.balances() == end


def test_a_payment_waiting_counts_as_made_for_duplicates(inst: Installation) -> None:
    """A future-dated payment that is still waiting blocks the same payment uploaded again
    in another file (AM05): the client would otherwise pay twice."""
    future = SamplePmtInf(
        pmt_inf_id="F",
        debtor_iban=A_MAIN,
        execution_date="2026-12-01",
        transactions=[ext("RENT-12", "500.00")],
    )
    first = inst.submit(Batch(msg_id="RENT-A", extra_pmts=[future]).build(), name="a.xml")
    assert first.statuses() == {"RENT-12": "PDNG"}
    second = inst.submit(Batch(msg_id="RENT-B", extra_pmts=[future]).build(), name="b.xml")
    assert second.tx("RENT-12").reasons == ["AM05"]


def test_a_pending_payment_whose_account_left_the_configuration_is_refused_on_its_day(
    template: Path, tmp_path: Path
) -> None:
    """A payment waiting for its day was booked on that day even when its creditor's
    account had been taken out of the configuration meanwhile (an account with no
    statements any more: the money shown to no one) or its debtor's had. On its day it is
    refused as a new file's payment would be — AC01 for the creditor, AC02 for the
    debtor — and the file's other payments execute."""
    inst = Installation.copy_of(template, tmp_path / "gw", now=riga("2026-11-25", "10:00"))
    main = SamplePmtInf(
        pmt_inf_id="P-MAIN",
        debtor_iban=A_MAIN,
        execution_date="2026-11-28",
        transactions=[internal("TO-B", "5.00"), ext("OUT", "7.00")],
    )
    small = SamplePmtInf(
        pmt_inf_id="P-SMALL",
        debtor_iban=A_SMALL,
        execution_date="2026-11-28",
        transactions=[ext("FROM-SMALL", "3.00")],
    )
    first = inst.submit(Batch(msg_id="LATER", extra_pmts=[main, small]).build())
    assert first.statuses() == {"TO-B": "PDNG", "OUT": "PDNG", "FROM-SMALL": "PDNG"}
    start = inst.balances()
    inst.close()
    config = (tmp_path / "gw" / "gateway.toml").read_text(encoding="utf-8")
    for iban in (B_MAIN, A_SMALL):
        block = f'  [[client.account]]\n  iban = "{iban}"\n  currency = "EUR"\n'
        assert block in config
        config = config.replace(block, "")
    (tmp_path / "gw" / "gateway.toml").write_text(config, encoding="utf-8")
    monday_early = riga("2026-11-30", "07:00")
    later = Installation.copy_of(tmp_path / "gw", tmp_path / "later", now=monday_early)
    try:
        with structlog.testing.capture_logs() as logged:
            assert len(later.run().files_with_pending_executed) == 1
        [line] = [x for x in logged if x["event"] == "pending.executed"]
        assert line["counts"] == {"RJCT": 2, "ACSC": 1} and line["duration_ms"] >= 0
        assert line["amounts"] == {"EUR": "7.00"}  # what it executed, as file.processed says
        [monday] = [a for a in later.new_answers() if a.msg_id != first.msg_id]
        assert monday.statuses() == {"TO-B": "RJCT", "OUT": "ACSC", "FROM-SMALL": "RJCT"}
        to_b, from_small = monday.tx("TO-B"), monday.tx("FROM-SMALL")
        assert to_b.reasons == ["AC01"] and "is not a treasury account" in to_b.additional_info[0]
        assert from_small.reasons == ["AC02"]
        assert "is not an account of this client" in from_small.additional_info[0]
        end = later.balances()
        assert end[B_MAIN] == start[B_MAIN] and end[A_SMALL] == start[A_SMALL]
        assert end[A_MAIN] == start[A_MAIN] - 700
    finally:
        later.close()
