"""Cancellation requests (camt.055, SPEC §15) through the file run.

A client cancels a payment still waiting (future-dated): camt.029 says ACCR/CNCL, the
original file gets a follow-up pain.002 reporting it RJCT DS02, and on its day it is
not executed. Payments unknown or another client's are NOOR (the same answer), those
already executed or cancelled AGNT; a wrong original amount is refused; the same
request twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pyiso20022.camt.camt_029_001_03 import Document as Camt029v03
from sqlalchemy import event, select
from structlog.testing import capture_logs

from gateway import db, progress
from tests.integration.pull_fixtures import Found, Out, riga
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    TREL_MISSING,
    Batch,
    Installation,
)
from tests.unit import pull_samples as s

LATER = dt.date(2026, 11, 30)  # Monday: the waiting payments' day


def waiting_batch(inst: Installation, msg_id: str = "PAY-F", client: str = CLIENT_A) -> None:
    debtor = A_MAIN if client == CLIENT_A else B_MAIN
    creditor = B_MAIN if client == CLIENT_A else A_MAIN
    b = Batch(debtor=debtor, msg_id=msg_id, execution_date=LATER.isoformat())
    for n, amount in ((1, "10.00"), (2, "20.00"), (3, "30.00")):
        b.tx(f"E-{n}", amount, creditor)
    answer = inst.submit(b.build(), name=f"{msg_id}.xml", client=client)
    assert set(answer.statuses().values()) == {"PDNG"}


def cancel(
    *e2e_amounts: tuple[str, str | None],
    version: str = "09",
    msg_id: str = "CXL-1",
    original: str = "PAY-F",
    pmt_inf_id: str | None = None,
    debtor_iban: str | None = None,
) -> bytes:
    txs = tuple(
        s.CancelTx(
            end_to_end_id=e2e, instr_id=None, amount=amount, cancellation_id=f"C-{e2e}",
            debtor_iban=debtor_iban,
        )
        for e2e, amount in e2e_amounts
    )
    pmt = s.CancelPmtInf(pmt_inf_id=pmt_inf_id or f"{original}-P1", transactions=txs)
    return s.to_bytes(
        s.camt055(version, msg_id=msg_id, original_msg_id=original, payment_infos=(pmt,))
    )


def run_request(inst: Installation, data: bytes, name: str = "cxl.xml", client: str = CLIENT_A):  # type: ignore[no-untyped-def]
    inst.drop(data, name, client)
    result = inst.run()
    assert len(result.outcomes) == 1 and inst.left_in(client) == []
    return result.outcomes[0]


def by_type(found: list[Found]) -> dict[str, list[Found]]:
    grouped: dict[str, list[Found]] = {}
    for f in found:
        grouped.setdefault(f.message, []).append(f)
    return grouped


def tx_statuses(answer: Found) -> list[tuple[str | None, str, list[str]]]:
    result = []
    for tx in answer.doc.xpath("//*[local-name()='TxInfAndSts']"):

        def text(name: str, tx=tx) -> str | None:  # type: ignore[no-untyped-def]
            found = tx.xpath(f"*[local-name()='{name}']")
            return found[0].text if found else None

        codes = [
            e.text for e in tx.xpath(".//*[local-name()='CxlStsRsnInf']/*/*[local-name()='Cd']")
        ]
        result.append((text("OrgnlEndToEndId"), text("TxCxlSts") or "", codes))
    return result


def payment_status(inst: Installation, e2e: str, msg_id: str = "PAY-F") -> tuple[str, str | None]:
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        row = conn.execute(
            select(p.status, p.reason).where(p.msg_id == msg_id, p.end_to_end_id == e2e)
        ).one()
    return row.status, row.reason


def test_a_waiting_payment_cancelled_never_executes(inst: Installation, assert_valid) -> None:  # type: ignore[no-untyped-def]
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    request = cancel(("E-2", "20.00"))
    assert_valid(request, "camt.055.001.09")
    outcome = run_request(inst, request)
    assert outcome.group_status == "CNCL" and outcome.shelf == "archive"
    found = by_type(out.new())
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "CNCL"
    assert answer.text("RslvdCase/Id") == "CXL-1"
    assert tx_statuses(answer) == [("E-2", "ACCR", [])]
    (follow_up,) = found["pain.002.001.03"]
    assert follow_up.text("OrgnlGrpInfAndSts/OrgnlMsgId") == "PAY-F"
    assert follow_up.texts("TxInfAndSts/OrgnlEndToEndId") == ["E-2"]
    assert follow_up.texts("TxInfAndSts/TxSts") == ["RJCT"]
    assert follow_up.texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02"]
    # the group is not "rejected": two of its three payments still wait (SPEC §6: derived)
    assert follow_up.text("OrgnlGrpInfAndSts/GrpSts") == "PART"
    assert follow_up.texts("OrgnlGrpInfAndSts/NbOfTxsPerSts/DtldSts") == ["PDNG", "RJCT"]
    assert follow_up.texts("OrgnlGrpInfAndSts/NbOfTxsPerSts/DtldNbOfTxs") == ["2", "1"]
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")
    # its day comes: the other two execute, the cancelled one does not
    before = inst.balance(A_MAIN)
    inst.clock.set(riga(LATER, "08:00"))
    inst.run()
    assert inst.balance(A_MAIN) == before - 4000
    assert payment_status(inst, "E-1")[0] == "ACSC"
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")
    executed = by_type(out.new())["pain.002.001.03"]
    assert [f.texts("TxInfAndSts/OrgnlEndToEndId") for f in executed] == [["E-1", "E-3"]]
    assert [f.text("OrgnlGrpInfAndSts/GrpSts") for f in executed] == ["PART"]


def test_the_same_cancellation_twice(inst: Installation) -> None:
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    run_request(inst, cancel(("E-2", "20.00")))
    out.new()
    again = run_request(inst, cancel(("E-2", "20.00"), msg_id="CXL-2"), name="cxl2.xml")
    assert again.group_status == "RJCR"
    (answer,) = out.new()  # no follow-up: nothing changed
    assert tx_statuses(answer) == [("E-2", "RJCR", ["AGNT"])]
    assert "already cancelled" in (answer.text("CxlStsRsnInf/AddtlInf") or "")
    # the very same bytes again: the original answer, once more
    same = run_request(inst, cancel(("E-2", "20.00")), name="cxl-again.xml")
    assert same.shelf == "duplicates"
    (repeated,) = out.new()
    assert tx_statuses(repeated) == [("E-2", "ACCR", [])]


def test_unknown_and_other_clients_payments_are_noor(inst: Installation) -> None:
    waiting_batch(inst, "PAY-B", client=CLIENT_B)
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    answers = []
    for n, (original, e2e) in enumerate((("PAY-B", "E-1"), ("PAY-F", "E-9"), ("PAY-X", "E-1"))):
        outcome = run_request(
            inst, cancel((e2e, None), original=original, msg_id=f"CXL-{n}"), name=f"c{n}.xml"
        )
        assert outcome.group_status == "RJCR"
        (answer,) = out.new()
        answers.append(answer)
    assert [tx_statuses(a) for a in answers] == [
        [("E-1", "RJCR", ["NOOR"])],
        [("E-9", "RJCR", ["NOOR"])],
        [("E-1", "RJCR", ["NOOR"])],
    ]
    # another client's batch and one that does not exist: the same answer
    assert answers[0].path.read_bytes().split(b"<CxlDtls>")[1].replace(b"PAY-B", b"X") == (
        answers[2].path.read_bytes().split(b"<CxlDtls>")[1].replace(b"PAY-X", b"X")
    )
    # GrpCxl false: the group is echoed, its cancellation not asked for, so no GrpCxlSts
    assert all(a.texts("OrgnlGrpInfAndSts/OrgnlMsgId") for a in answers)
    assert all(a.texts("OrgnlGrpInfAndSts/GrpCxlSts") == [] for a in answers)
    assert payment_status(inst, "E-1", "PAY-B") == ("PDNG", None)


def test_wrong_amount_and_partial(inst: Installation) -> None:
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, cancel(("E-1", "10.00"), ("E-3", "31.00")))
    assert outcome.group_status == "PACR"
    answer = by_type(out.new())["camt.029.001.10"][0]
    assert tx_statuses(answer) == [("E-1", "ACCR", []), ("E-3", "RJCR", ["NOOR"])]
    assert "31.00 EUR is not the payment's (30.00 EUR)" in " ".join(answer.texts("AddtlInf"))
    assert payment_status(inst, "E-3") == ("PDNG", None)


def test_an_executed_payment_is_agnt(inst: Installation) -> None:
    inst.submit(Batch(msg_id="PAY-NOW").tx("N-1", "1.00").build())
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, cancel(("N-1", None), original="PAY-NOW"))
    assert outcome.group_status == "RJCR"
    (answer,) = out.new()
    assert tx_statuses(answer) == [("N-1", "RJCR", ["AGNT"])]
    assert "already executed" in (answer.text("CxlStsRsnInf/AddtlInf") or "")


@pytest.mark.parametrize("version", ["01", "09"])
def test_whole_batch(inst: Installation, version: str, assert_valid) -> None:  # type: ignore[no-untyped-def]
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    data = s.to_bytes(
        s.camt055(version, original_msg_id="PAY-F", whole_group=True, payment_infos=())
    )
    outcome = run_request(inst, data)
    assert outcome.group_status == "CNCL"
    found = by_type(out.new())
    message = "camt.029.001.10" if version == "09" else "camt.029.001.03"
    (answer,) = found[message]
    if version == "09":
        assert_valid(answer.path, message)
    else:
        s.parse_back(answer.path.read_bytes(), Camt029v03)
    assert [t[1] for t in tx_statuses(answer)] == ["ACCR"] * 3
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["ACCR"]
    assert found["pain.002.001.03"][0].texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02"] * 3
    assert {payment_status(inst, f"E-{n}")[1] for n in (1, 2, 3)} == {"DS02"}


def test_a_whole_big_batch_is_cancelled_in_a_few_statements(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payments a request cancels are marked together, not one UPDATE each: 1,000 of
    them took 1,000 statements, and an outside tester's 150,000 took 50 s while every
    other client's files waited — with no progress for `status` (now as for a batch)."""
    monkeypatch.setattr(progress, "progress_interval_seconds", 0.0)
    b = Batch(debtor=A_MAIN, msg_id="PAY-BIG", execution_date=LATER.isoformat())
    for n in range(1_000):
        b.tx(f"B-{n}", "1.00", B_MAIN)
    answer = inst.submit(b.build(), name="big.xml")
    assert set(answer.statuses().values()) == {"PDNG"}
    updates: list[str] = []

    def seen(conn, cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE GW_PAYMENTS"):
            updates.append(statement)

    request = s.to_bytes(
        s.camt055("09", original_msg_id="PAY-BIG", whole_group=True, payment_infos=())
    )
    event.listen(inst.env.engine, "before_cursor_execute", seen)
    try:
        with capture_logs() as logged:
            outcome = run_request(inst, request)
    finally:
        event.remove(inst.env.engine, "before_cursor_execute", seen)
    assert outcome.group_status == "CNCL"
    assert len(updates) <= 5, len(updates)
    told = [e["payments_done"] for e in logged if e["event"] == "file.progress"]
    assert told == [500, 1000], told
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        rows = conn.execute(
            select(p.status, p.reason, p.additional_info, p.report_no)
            .where(p.msg_id == "PAY-BIG").distinct()
        ).all()
    assert rows == [("RJCT", "DS02", "cancelled by CXL-20261126-01", 2)]


@pytest.mark.parametrize("case", list(s.hostile(cancel(("E-1", None)), "camt.055.001.09")))
def test_hostile_cancellations(inst: Installation, case: str) -> None:
    waiting_batch(inst)
    bad = s.hostile(cancel(("E-1", None)), "camt.055.001.09")[case]
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, bad)
    (answer,) = out.new()
    assert outcome.shelf == "rejected"
    assert answer.message in ("admi.002.001.01", "pain.002.001.03")
    assert payment_status(inst, "E-1") == ("PDNG", None)


def test_the_2009_edition_answers_in_its_own_codes(inst: Installation) -> None:
    """camt.055.001.01 is answered with camt.029.001.03, which knows no NOOR and no PACR
    at message level: AGNT with the English, and PECR (SPEC §15)."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, cancel(("E-1", "10.00"), ("E-9", None), version="01"))
    assert outcome.group_status == "PACR"
    found = by_type(out.new())
    (answer,) = found["camt.029.001.03"]
    s.parse_back(answer.path.read_bytes(), Camt029v03)
    assert answer.text("Sts/Conf") == "PECR"
    assert tx_statuses(answer) == [("E-1", "ACCR", []), ("E-9", "RJCR", ["AGNT"])]
    assert "no such payment of this client" in answer.texts("CxlStsRsnInf/AddtlInf")
    assert found["pain.002.001.03"][0].texts("TxInfAndSts/OrgnlEndToEndId") == ["E-1"]


def test_false_cancels_only_what_is_named_and_naming_nothing_cancels_nothing(
    inst: Installation,
) -> None:
    """`GrpCxl` false with no payment information named, or `PmtInfCxl` false with no
    transaction named, names nothing: RJCR NOOR saying so, and every payment still waits
    (they had cancelled the whole batch or payment information)."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    group_false = s.camt055("09", original_msg_id="PAY-F", whole_group=False, payment_infos=())
    outcome = run_request(inst, s.to_bytes(group_false))
    (answer,) = out.new()
    assert outcome.group_status == "RJCR" and answer.text("Sts/Conf") == "RJCR"
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["RJCR"]
    assert "nothing to cancel" in " ".join(answer.texts("OrgnlGrpInfAndSts/CxlStsRsnInf/AddtlInf"))
    pmt_false = s.CancelPmtInf(pmt_inf_id="PAY-F-P1", whole=False, transactions=())
    data = s.to_bytes(s.camt055("09", msg_id="CXL-2", original_msg_id="PAY-F",
                                payment_infos=(pmt_false,)))  # fmt: skip
    outcome = run_request(inst, data, name="cxl2.xml")
    (answer,) = out.new()
    assert outcome.group_status == "RJCR", answer.path.read_text()
    assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["RJCR"]
    assert [payment_status(inst, f"E-{n}") for n in (1, 2, 3)] == [("PDNG", None)] * 3


@pytest.mark.parametrize("version", ["01", "09"])
def test_a_batch_rejected_as_a_whole_is_agnt_not_unknown(inst: Installation, version: str) -> None:
    """The client holds a pain.002 rejecting its batch (AM18): cancelling that batch said
    "no such payment of this client" (NOOR), as for a batch it never sent (an outside
    tester). It is `AGNT`: rejected as a whole, never executed. Another kind of message
    with that MsgId, or another client's, is still unknown."""
    b = Batch(debtor=A_MAIN, msg_id="PAY-AM18", execution_date=LATER.isoformat())
    for n in (1, 2):
        b.tx(f"R-{n}", "1.00", B_MAIN)
    data = b.build().replace(b"<NbOfTxs>2</NbOfTxs>", b"<NbOfTxs>3</NbOfTxs>", 1)
    answer = inst.submit(data, name="am18.xml")
    assert answer.group_status == "RJCT" and answer.group_reasons == ["AM18"]
    outs = {c: Out(inst.outbox(c)) for c in (CLIENT_A, CLIENT_B)}

    def whole(original: str, msg_id: str, client: str = CLIENT_A) -> Found:
        request = s.camt055(version, msg_id=msg_id, original_msg_id=original, whole_group=True,
                            payment_infos=())  # fmt: skip
        outcome = run_request(inst, s.to_bytes(request), name=f"{msg_id}.xml", client=client)
        assert outcome.group_status == "RJCR"
        (found,) = outs[client].new()
        return found

    found = whole("PAY-AM18", "CXL-AM18")
    assert found.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["RJCR"]
    assert found.texts("OrgnlGrpInfAndSts/CxlStsRsnInf/Rsn/Cd") == ["AGNT"]
    assert found.texts("OrgnlGrpInfAndSts/CxlStsRsnInf/AddtlInf") == [
        "rejected as a whole (AM18), never executed"
    ]
    for unknown, msg_id, client in (("PAY-NONE", "CXL-NONE", CLIENT_A),
                                    ("PAY-AM18", "CXL-THEIRS", CLIENT_B)):  # fmt: skip
        found = whole(unknown, msg_id, client)
        expected = ["NOOR"] if version == "09" else ["AGNT"]
        assert found.texts("OrgnlGrpInfAndSts/CxlStsRsnInf/Rsn/Cd") == expected, version
        assert "rejected as a whole" not in found.path.read_text()


def test_a_request_naming_another_kind_of_message_finds_nothing(inst: Installation) -> None:
    """The original MsgId of our pain.001 named as a pain.008 is not our payment: NOOR,
    nothing cancelled. The same request naming pain.001 in another version finds it."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    named = cancel(("E-2", "20.00"))
    other = named.replace(b">pain.001.001.03<", b">pain.008.001.02<")
    assert other != named
    outcome = run_request(inst, other)
    (answer,) = out.new()
    assert outcome.group_status == "RJCR" and tx_statuses(answer) == [("E-2", "RJCR", ["NOOR"])]
    assert payment_status(inst, "E-2") == ("PDNG", None)
    version = cancel(("E-2", "20.00"), msg_id="CXL-2").replace(
        b">pain.001.001.03<", b">pain.001.001.09<"
    )
    assert run_request(inst, version, name="cxl2.xml").group_status == "CNCL"
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")


def test_a_payment_named_twice_in_one_request_is_cancelled_once_and_said_once(
    inst: Installation,
) -> None:
    """E-1 named twice in one payment information, then its whole payment information in
    a second underlying: every mention is ACCR (this request cancelled it) and the
    message is CNCL, all it named being cancelled; the payment is cancelled once."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    twice = s.CancelPmtInf(pmt_inf_id="PAY-F-P1", transactions=(
        s.CancelTx(end_to_end_id="E-1", instr_id=None, amount="10.00", cancellation_id="C-1"),
        s.CancelTx(end_to_end_id="E-1", instr_id=None, amount="10.00", cancellation_id="C-1b"),
    ))  # fmt: skip
    first = s.camt055("09", original_msg_id="PAY-F", payment_infos=(twice,))
    whole = s.camt055("09", original_msg_id="PAY-F", payment_infos=(
        s.CancelPmtInf(pmt_inf_id="PAY-F-P1", whole=True, transactions=()),
    ))  # fmt: skip
    request = first.find(".//{*}CstmrPmtCxlReq")
    request.append(whole.find(".//{*}Undrlyg"))
    outcome = run_request(inst, s.to_bytes(first))
    found = by_type(out.new())
    (answer,) = found["camt.029.001.10"]
    assert [t[:2] for t in tx_statuses(answer)] == [
        ("E-1", "ACCR"), ("E-1", "ACCR"), ("E-1", "ACCR"), ("E-2", "ACCR"), ("E-3", "ACCR"),
    ]
    assert outcome.group_status == "CNCL" and answer.text("Sts/Conf") == "CNCL"
    (follow_up,) = found["pain.002.001.03"]
    assert sorted(follow_up.texts("TxInfAndSts/OrgnlEndToEndId")) == ["E-1", "E-2", "E-3"]


@pytest.mark.parametrize("version", ["01", "09"])
def test_a_group_not_asked_to_be_cancelled_has_no_group_status(  # type: ignore[no-untyped-def]
    inst: Installation, version: str, assert_valid
) -> None:
    """GrpCxlSts is the status of a group cancellation: with GrpCxl false the group is
    echoed without one. Here the group named is PAY-D2 while its payment information
    names its own original group, PAY-F: E-2 of PAY-F is cancelled and said so there,
    and nothing says PAY-D2 was cancelled (it was not: all of it still waits)."""
    waiting_batch(inst)
    other = Batch(msg_id="PAY-D2", execution_date=LATER.isoformat()).tx("D-1", "7.00", B_MAIN)
    inst.submit(other.build(), name="d2.xml")
    out = Out(inst.outbox(CLIENT_A))
    pmt = s.CancelPmtInf(pmt_inf_id="PAY-F-P1", group_here=True, transactions=(
        s.CancelTx(end_to_end_id="E-2", instr_id=None, amount=None, cancellation_id="C-2"),
    ))  # fmt: skip
    root = s.camt055(version, original_msg_id="PAY-F", whole_group=False, payment_infos=(pmt,))
    root.find(".//{*}OrgnlGrpInfAndCxl/{*}OrgnlMsgId").text = "PAY-D2"
    outcome = run_request(inst, s.to_bytes(root))
    message = "camt.029.001.10" if version == "09" else "camt.029.001.03"
    (answer,) = by_type(out.new())[message]
    if version == "09":
        assert_valid(answer.path, message)
    else:
        s.parse_back(answer.path.read_bytes(), Camt029v03)
    assert outcome.group_status == "CNCL"
    assert answer.texts("OrgnlGrpInfAndSts/OrgnlMsgId") == ["PAY-D2"]
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == []
    assert answer.texts("OrgnlPmtInfAndSts/OrgnlGrpInf/OrgnlMsgId") == ["PAY-F"]
    assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["ACCR"]
    assert tx_statuses(answer) == [("E-2", "ACCR", [])]
    assert payment_status(inst, "E-2") == ("RJCT", "DS02")
    assert payment_status(inst, "D-1", "PAY-D2") == ("PDNG", None)
    # the group asked to be cancelled has its status
    whole = s.camt055(version, msg_id="CXL-2", original_msg_id="PAY-D2", whole_group=True,
                      payment_infos=())  # fmt: skip
    run_request(inst, s.to_bytes(whole), name="cxl2.xml")
    (answer,) = by_type(out.new())[message]
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["ACCR"]


@pytest.mark.parametrize("cut", ["truncated", "without Assgnmt/Id"])
def test_a_request_whose_msg_id_cannot_be_read_names_the_upload(
    inst: Installation, cut: str
) -> None:
    """admi.002 with RltdRef/Ref UNKNOWN names the uploaded file and its SHA-256 (SPEC §6,
    as pain.002 FF01 does), so the client can tell which of its uploads it answers."""
    whole = cancel(("E-1", None))
    if cut == "truncated":
        data = whole[: len(whole) // 2]
    else:
        data = whole.replace(b"<Id>CXL-1</Id>", b"", 1)
        assert data != whole
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, data, name="cxl-cut.xml")
    assert outcome.shelf == "rejected"
    (reject,) = out.new()
    assert reject.message == "admi.002.001.01"
    assert reject.text("RltdRef/Ref") == "UNKNOWN"
    description = reject.text("Rsn/RsnDesc") or ""
    sha256 = hashlib.sha256(data).hexdigest()
    assert description.endswith(f"; file cxl-cut.xml, SHA-256 {sha256}"), description
    assert len(description) <= 350


@pytest.mark.parametrize("version", ["01", "09"])
def test_a_cancellation_naming_a_debtor_account_not_the_clients_is_refused_as_a_whole(
    inst: Installation, version: str
) -> None:
    """SPEC §15: a camt.055 that names an account that is not the client's (unknown and
    foreign look the same) is answered with admi.002, never with data — and cancels
    nothing. Its own debtor account is named as usual."""
    waiting_batch(inst)
    out = Out(inst.outbox(CLIENT_A))
    texts = []
    for n, iban in enumerate((B_MAIN, TREL_MISSING)):
        data = cancel(("E-1", "10.00"), version=version, msg_id=f"CXL-{n}", debtor_iban=iban)
        outcome = run_request(inst, data, name=f"c{n}.xml")
        assert (outcome.group_status, outcome.reason) == ("RJCT", "AC02")
        (answer,) = out.new()
        assert answer.message == "admi.002.001.01"
        assert answer.text("Rsn/RjctgPtyRsn") == "AC02"
        assert answer.text("RltdRef/Ref") == f"CXL-{n}"
        texts.append(answer.text("Rsn/RsnDesc").replace(iban, "X"))
        assert payment_status(inst, "E-1") == ("PDNG", None)
    assert texts[0] == texts[1]  # unknown and foreign look the same
    small = A_MAIN[:4] + A_MAIN[4:].lower()  # (the schema lets the bank code be lower case)
    lower = cancel(("E-1", "10.00"), version=version, msg_id="CXL-L", debtor_iban=small)
    assert run_request(inst, lower, name="lower.xml").reason == "AC02"
    (answer,) = out.new()
    assert "(an IBAN is written in capital letters)" in str(answer.text("Rsn/RsnDesc"))
    assert payment_status(inst, "E-1") == ("PDNG", None)
    # one of the client's own accounts, but not the payment's: not the payment named
    outcome = run_request(
        inst, cancel(("E-1", "10.00"), version=version, msg_id="CXL-S", debtor_iban=A_SMALL),
        name="small.xml",
    )
    assert outcome.group_status == "RJCR"
    (answer,) = out.new()
    assert tx_statuses(answer) == [("E-1", "RJCR", ["AGNT" if version == "01" else "NOOR"])]
    why = " ".join(answer.texts("AddtlInf"))
    assert f"debtor account {A_SMALL} is not the payment's ({A_MAIN})" in why, why
    assert payment_status(inst, "E-1") == ("PDNG", None)
    outcome = run_request(inst, cancel(("E-1", "10.00"), version=version, debtor_iban=A_MAIN))
    assert outcome.group_status == "CNCL"
    assert payment_status(inst, "E-1") == ("RJCT", "DS02")


def test_a_payment_of_zero_named_with_its_amount_is_the_one_rejected_at_arrival(
    inst: Installation,
) -> None:
    """A payment of 0.00 (rejected AM12 on arrival) named with its original amount 0.00 is
    that payment: AGNT, rejected and never executed — not NOOR "0.00 EUR is not the
    payment's (0.00 EUR)" (the amount was read as a payment's, where zero is refused: an
    outside tester)."""
    answer = inst.submit(Batch(msg_id="PAY-Z").tx("Z-0", "0.00").tx("Z-1", "1.00").build())
    assert answer.statuses() == {"Z-0": "RJCT", "Z-1": "ACSC"}
    out = Out(inst.outbox(CLIENT_A))
    outcome = run_request(inst, cancel(("Z-0", "0.00"), original="PAY-Z"))
    assert outcome.group_status == "RJCR"
    (camt029,) = by_type(out.new())["camt.029.001.10"]
    assert tx_statuses(camt029) == [("Z-0", "RJCR", ["AGNT"])]
    assert "rejected (AM12), never executed" in " ".join(camt029.texts("AddtlInf"))
