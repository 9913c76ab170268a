"""Answers a client's ERP can match to what it sent (SPEC §6).

A file rejected as a whole still echoes what could be read of it (OrgnlMsgId,
OrgnlMsgNmId, OrgnlCreDtTm, OrgnlNbOfTxs, OrgnlCtrlSum); where nothing could be read,
the answer names the uploaded file and its SHA-256. Every PDNG says why it waits and
when it is expected to execute; AM05 against a payment that is only waiting says so;
a zero amount is echoed as sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest

from gateway.samples import SamplePmtInf, SampleTx
from tests.pipeline_fixtures import (
    A_MAIN,
    EXTERNAL,
    EXTERNAL_BIC,
    NS002,
    RIGA,
    TODAY,
    Answer,
    Batch,
    Installation,
)


def group(answer: Answer, tag: str) -> str | None:
    found = answer.doc.xpath(f"//p:OrgnlGrpInfAndSts/p:{tag}", namespaces=NS002)
    return found[0].text if found else None


def test_a_schema_invalid_file_is_answered_with_its_own_ids(
    inst: Installation, assert_valid: object
) -> None:
    """A well-formed file that breaks the schema (a payment information without PmtMtd)
    is rejected FF01, and the answer carries its MsgId, message name, creation time,
    number of transactions and control sum as sent — not UNKNOWN."""
    data = Batch(msg_id="ERP-2026-0042").tx("X-1", "12.50").build()
    broken = data.replace(b"<PmtMtd>TRF</PmtMtd>", b"")
    answer = inst.submit(broken, name="run42.xml")
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.group_reasons == ["FF01"]
    assert (group(answer, "OrgnlMsgId"), group(answer, "OrgnlMsgNmId")) == (
        "ERP-2026-0042",
        "pain.001.001.03",
    )
    assert group(answer, "OrgnlCreDtTm") == "2026-11-25T09:00:00"
    assert (group(answer, "OrgnlNbOfTxs"), group(answer, "OrgnlCtrlSum")) == ("1", "12.50")


@pytest.mark.parametrize("declared", ["\u00b2", "\u0663", "1" * 5000])
def test_a_number_of_transactions_no_number_is_answered_without_it(
    inst: Installation, assert_valid: object, declared: str
) -> None:
    """GrpHdr/NbOfTxs "²" is a digit to `str.isdigit` but not to `int`: the echo of a file
    rejected as a whole raised, the file was never answered and went to quarantine after
    three tries (a reviewer). Like a number past the schema's 15 digits, it is not echoed."""
    data = Batch(msg_id="ERP-NB-1").tx("X-1", "12.50").build()
    broken = data.replace(b"<NbOfTxs>1</NbOfTxs>", f"<NbOfTxs>{declared}</NbOfTxs>".encode(), 1)
    assert broken != data
    answer = inst.submit(broken, name="nb.xml")
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.group_reasons == ["FF01"]
    assert group(answer, "OrgnlMsgId") == "ERP-NB-1"
    assert group(answer, "OrgnlNbOfTxs") is None


@pytest.mark.parametrize(
    ("what", "break_it"),
    [
        ("tags that do not match", lambda d: d.replace(b"</Nm>", b"</Name>", 1)),
        ("content after the document", lambda d: d + b"<extra/>"),
        ("a byte that is not UTF-8", lambda d: d.replace(b"<Nm>", b"<Nm>\xe9", 1)),
    ],
)
def test_a_file_broken_after_its_group_header_echoes_it(
    inst: Installation, assert_valid: object, what: str, break_it: Callable[[bytes], bytes]
) -> None:
    """A file not well-formed somewhere after a readable group header is answered with its
    MsgId, name and creation time (the echo read one block and lost what the parser had
    read before the fault: UNKNOWN), as a file cut short or schema-invalid already was."""
    data = Batch(msg_id="ERP-BROKEN-7").tx("X-1", "12.50").build()
    broken = break_it(data)
    assert broken != data, what
    answer = inst.submit(broken, name="broken.xml")
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.group_reasons == ["FF01"]
    assert (group(answer, "OrgnlMsgId"), group(answer, "OrgnlMsgNmId")) == (
        "ERP-BROKEN-7",
        "pain.001.001.03",
    ), what
    assert group(answer, "OrgnlCreDtTm") == "2026-11-25T09:00:00"


def test_another_message_is_answered_with_its_name_and_id(
    inst: Installation, assert_valid: object
) -> None:
    """A direct debit initiation sent by mistake is rejected FF01 naming pain.008 and its
    MsgId, so the sender knows which of its files was refused and why."""
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"><CstmrDrctDbtInitn>'
        b"<GrpHdr><MsgId>DD-7</MsgId><CreDtTm>2026-11-25T08:00:00+02:00</CreDtTm>"
        b"<NbOfTxs>3</NbOfTxs></GrpHdr></CstmrDrctDbtInitn></Document>"
    )
    answer = inst.submit(data, name="dd.xml")
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.group_reasons == ["FF01"]
    assert (group(answer, "OrgnlMsgId"), group(answer, "OrgnlMsgNmId")) == (
        "DD-7",
        "pain.008.001.02",
    )
    assert group(answer, "OrgnlCreDtTm") == "2026-11-25T08:00:00+02:00"
    assert "unsupported message" in " ".join(answer.group_info)


def test_a_file_nothing_could_be_read_of_is_named_with_its_digest(
    inst: Installation, assert_valid: object
) -> None:
    """Bytes that are not XML at all get OrgnlMsgId UNKNOWN, and AddtlInf names the file
    as uploaded and its SHA-256, which the client can compute to match the answer."""
    data = bytes(range(256)) * 4
    answer = inst.submit(data, name="scan-0001.pdf")
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.group_reasons == ["FF01"]
    assert group(answer, "OrgnlMsgId") == "UNKNOWN"
    info = " ".join(answer.group_info)
    assert "scan-0001.pdf" in info and hashlib.sha256(data).hexdigest() in info


def test_accepted_files_and_their_follow_ups_echo_creation_time_and_control_sum(
    inst: Installation, assert_valid: object
) -> None:
    """The first report of an accepted file and the follow-up report when its pending
    payment executes both echo OrgnlCreDtTm and OrgnlCtrlSum as sent."""
    tomorrow = TODAY + dt.timedelta(days=1)
    data = Batch(msg_id="LATER-9", execution_date=tomorrow.isoformat()).tx("L-1", "7.00").build()
    first = inst.submit(data)
    assert first.statuses() == {"L-1": "PDNG"}
    inst.clock.set(dt.datetime.combine(tomorrow, dt.time(9, 0), RIGA))
    inst.run()
    [follow_up] = inst.new_answers()
    assert follow_up.statuses() == {"L-1": "ACSC"}
    for answer in (first, follow_up):
        assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
        assert group(answer, "OrgnlCreDtTm") == "2026-11-25T09:00:00"
        assert group(answer, "OrgnlCtrlSum") == "7.00"


def pmt_ctrl_sums(answer: Answer) -> dict[str, str | None]:
    """Each OrgnlPmtInfAndSts's OrgnlCtrlSum (None: absent), by OrgnlPmtInfId."""
    return {
        p.findtext("p:OrgnlPmtInfId", namespaces=NS002): p.findtext(
            "p:OrgnlCtrlSum", namespaces=NS002
        )
        for p in answer.doc.xpath("//p:OrgnlPmtInfAndSts", namespaces=NS002)
    }


def test_a_payment_informations_control_sum_is_echoed_as_sent(
    inst: Installation, assert_valid: object
) -> None:
    """Each OrgnlPmtInfAndSts echoes its PmtInf/CtrlSum as sent, in the first report and in
    the follow-up, however its payments fared (here one is AM12, so a sum of what was
    booked would differ), in the form it was written (4.500); a payment information sent
    without a CtrlSum has none in the answer."""
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    wrong = SampleTx("P1-BAD", "1.001", EXTERNAL, creditor_bic=EXTERNAL_BIC)  # AM12 in EUR
    good = SampleTx("P1-OK", "2.00", EXTERNAL, creditor_bic=EXTERNAL_BIC)
    later = SampleTx("P2-1", "5.00", EXTERNAL, creditor_bic=EXTERNAL_BIC)
    also = SampleTx("P3-1", "4.50", EXTERNAL, creditor_bic=EXTERNAL_BIC)
    data = Batch(
        msg_id="PMT-SUMS",
        extra_pmts=[
            SamplePmtInf("P1", A_MAIN, [wrong, good], TODAY.isoformat(), ctrl_sum="3.001"),
            SamplePmtInf("P2", A_MAIN, [later], tomorrow),
            SamplePmtInf("P3", A_MAIN, [also], tomorrow, ctrl_sum="4.500"),
        ],
    ).build()
    first = inst.submit(data)
    assert first.statuses() == {"P1-BAD": "RJCT", "P1-OK": "ACSC", "P2-1": "PDNG", "P3-1": "PDNG"}
    assert pmt_ctrl_sums(first) == {"P1": "3.001", "P2": None, "P3": "4.500"}
    inst.clock.set(dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(9, 0), RIGA))
    inst.run()
    [follow_up] = inst.new_answers()
    assert follow_up.statuses() == {"P2-1": "ACSC", "P3-1": "ACSC"}
    assert pmt_ctrl_sums(follow_up) == {"P2": None, "P3": "4.500"}
    for answer in (first, follow_up):
        assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]


def test_every_pending_payment_says_why_and_until_when(inst: Installation) -> None:
    """A payment received after the external cut-off waits, and its TxInfAndSts says so:
    received at what time, which cut-off, and the day it executes."""
    inst.clock.set(dt.datetime.combine(TODAY, dt.time(16, 5), RIGA))
    answer = inst.submit(Batch(msg_id="LATE-1").tx("E-1", "5.00").build())
    tx = answer.tx("E-1")
    assert tx.status == "PDNG" and tx.reasons == []
    assert " ".join(tx.additional_info) == (
        "received 16:05, after the 15:30 cut-off for external payments; executes 2026-11-26"
    )


def test_a_duplicate_of_a_waiting_payment_says_it_is_waiting(inst: Installation) -> None:
    """The same payment sent again while the first is still pending is AM05, worded so
    that it does not claim the first one was made."""
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    inst.submit(Batch(msg_id="W-1", execution_date=tomorrow).tx("RENT-3", "50.00").build())
    again = inst.submit(Batch(msg_id="W-2", execution_date=tomorrow).tx("RENT-3", "50.00").build())
    tx = again.tx("RENT-3")
    assert tx.reasons == ["AM05"]
    assert "booked or is waiting" in " ".join(tx.additional_info)


def test_a_zero_amount_is_echoed_as_sent(inst: Installation, assert_valid: object) -> None:
    """A payment of 0.00 is rejected AM12 and its OrgnlTxRef still shows the amount sent."""
    answer = inst.submit(Batch(msg_id="ZERO-1").tx("Z-1", "0.00").tx("Z-2", "1.00").build())
    assert_valid(answer.path, "pain.002.001.03")  # type: ignore[operator]
    assert answer.tx("Z-1").reasons == ["AM12"]
    (amount,) = answer.doc.xpath(
        "//p:TxInfAndSts[p:OrgnlEndToEndId='Z-1']/p:OrgnlTxRef/p:Amt/p:InstdAmt",
        namespaces=NS002,
    )
    assert (amount.text, amount.get("Ccy")) == ("0.00", "EUR")
