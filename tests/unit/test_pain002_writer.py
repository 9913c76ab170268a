"""pain.002.001.03 writer: what a client reads back about every file and transaction."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.outbound import pain002_v03 as pain002
from gateway.outbound.pain002_v03 import PaymentInfoReport, StatusReport, TxReport
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus, derive
from tests.unit.peak_memory import peak_growth

MESSAGE = "pain.002.001.03"
NS = {"p": f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"}
RIGA = dt.timezone(dt.timedelta(hours=2))
CREATED = dt.datetime(2026, 11, 25, 10, 15, 1, tzinfo=RIGA)

Validate = Callable[[bytes | Path, str], None]


def booked(e2e: str, ref: str = "L0001", **fields: Any) -> TxReport:
    return TxReport(end_to_end_id=e2e, status=TxStatus.ACSC, acct_svcr_ref=ref, **fields)


def rejected(e2e: str, reason: Reason, info: str, **fields: Any) -> TxReport:
    return TxReport(
        end_to_end_id=e2e, status=TxStatus.RJCT, reason=reason, additional_info=info, **fields
    )


def pending(e2e: str, **fields: Any) -> TxReport:
    return TxReport(end_to_end_id=e2e, status=TxStatus.PDNG, **fields)


def counts_of(txs: list[TxReport]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tx in txs:
        counts[tx.status] = counts.get(tx.status, 0) + 1
    return counts


def report_of(*groups: list[TxReport], **fields: Any) -> StatusReport:
    """A report whose statuses and counts are derived the way the pipeline derives them."""
    infos = [
        PaymentInfoReport(
            pmt_inf_id=f"PMT{i}",
            nb_of_txs=len(txs),
            ctrl_sum=Decimal(sum(tx.amount_minor or 0 for tx in txs)).scaleb(-2),
            status=derive(counts_of(txs)),
            counts=counts_of(txs),
            transactions=txs,
        )
        for i, txs in enumerate(groups, start=1)
    ]
    everything = counts_of([tx for txs in groups for tx in txs])
    defaults: dict[str, Any] = {
        "msg_id": "GW20261125000042",
        "created_at": CREATED,
        "original_msg_id": "CLIENT-MSG-1",
        "original_msg_name": "pain.001.001.03",
        "original_created_at": "2026-11-25T09:55:00",
        "original_nb_of_txs": sum(len(txs) for txs in groups),
        "original_ctrl_sum": Decimal("10.00"),
        "group_status": derive(everything),
        "counts": everything,
        "payment_infos": infos,
    }
    return StatusReport(**(defaults | fields))


def written(report: StatusReport, assert_valid: Validate) -> etree._Element:
    out = io.BytesIO()
    pain002.write(report, out)
    data = out.getvalue()
    assert_valid(data, MESSAGE)
    return etree.fromstring(data)


def tx_by_e2e(root: etree._Element, e2e: str) -> etree._Element:
    (tx,) = root.xpath(f"//p:TxInfAndSts[p:OrgnlEndToEndId='{e2e}']", namespaces=NS)
    return tx


def text(element: etree._Element, path: str) -> list[str]:
    return [str(node) for node in element.xpath(f"{path}/text()", namespaces=NS)]


def test_each_transaction_carries_its_own_status(assert_valid: Validate) -> None:
    """A client sees which payment was booked (with the ledger reference), which waits,
    and which was rejected with its reason and an English explanation."""
    txs = [
        booked("E2E-1", ref="L0000001", instr_id="INSTR-1", amount_minor=1000, currency="EUR"),
        rejected("E2E-2", Reason.AC01, "CdtrAcct/Id/IBAN 'LV00XXXX' is not a valid IBAN"),
        pending("E2E-3", requested_execution_date=dt.date(2026, 11, 30)),
    ]
    root = written(report_of(txs), assert_valid)

    ok = tx_by_e2e(root, "E2E-1")
    assert text(ok, "p:TxSts") == ["ACSC"]
    assert text(ok, "p:AcctSvcrRef") == ["L0000001"]
    assert text(ok, "p:OrgnlInstrId") == ["INSTR-1"]
    assert text(ok, "p:OrgnlTxRef/p:Amt/p:InstdAmt") == ["10.00"]
    assert ok.xpath("p:StsRsnInf", namespaces=NS) == []

    bad = tx_by_e2e(root, "E2E-2")
    assert text(bad, "p:TxSts") == ["RJCT"]
    assert text(bad, "p:StsRsnInf/p:Rsn/p:Cd") == ["AC01"]
    assert text(bad, "p:StsRsnInf/p:AddtlInf") == [
        "CdtrAcct/Id/IBAN 'LV00XXXX' is not a valid IBAN"
    ]
    assert bad.xpath("p:OrgnlInstrId|p:AcctSvcrRef", namespaces=NS) == []

    waiting = tx_by_e2e(root, "E2E-3")
    assert text(waiting, "p:TxSts") == ["PDNG"]
    assert text(waiting, "p:OrgnlTxRef/p:ReqdExctnDt") == ["2026-11-30"]
    assert waiting.xpath("p:AcctSvcrRef|p:StsRsnInf", namespaces=NS) == []


def test_original_transaction_reference(assert_valid: Validate) -> None:
    """The client can match each answer to its instruction: amount, date, creditor."""
    tx = booked(
        "E2E-1",
        amount_minor=123456,
        currency="EUR",
        requested_execution_date=dt.date(2026, 11, 25),
        creditor_name="SIA Piegādātājs",
        creditor_iban="LV80BANK0000435195001",
    )
    ref = tx_by_e2e(written(report_of([tx]), assert_valid), "E2E-1")
    (amount,) = ref.xpath("p:OrgnlTxRef/p:Amt/p:InstdAmt", namespaces=NS)
    assert (amount.text, amount.get("Ccy")) == ("1234.56", "EUR")
    assert text(ref, "p:OrgnlTxRef/p:Cdtr/p:Nm") == ["SIA Piegādātājs"]
    assert text(ref, "p:OrgnlTxRef/p:CdtrAcct/p:Id/p:IBAN") == ["LV80BANK0000435195001"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([TxStatus.ACSC, TxStatus.ACSC], GroupStatus.ACSC),
        ([TxStatus.ACSC, TxStatus.PDNG], GroupStatus.ACCP),
        ([TxStatus.ACSC, TxStatus.RJCT], GroupStatus.PART),
        ([TxStatus.RJCT, TxStatus.RJCT], GroupStatus.RJCT),
    ],
)
def test_group_and_payment_information_status(
    statuses: list[TxStatus], expected: GroupStatus, assert_valid: Validate
) -> None:
    """Group and payment-information status follow SPEC §6 (all RJCT → RJCT, some → PART,
    all ACSC → ACSC, else ACCP) and the per-status counts add up to the transactions."""
    txs = [
        rejected(f"E{i}", Reason.AM04, "insufficient funds")
        if status is TxStatus.RJCT
        else TxReport(end_to_end_id=f"E{i}", status=status)
        for i, status in enumerate(statuses)
    ]
    root = written(report_of(txs), assert_valid)
    assert text(root, "//p:GrpSts") == [expected.value]
    assert text(root, "//p:PmtInfSts") == [expected.value]
    per_status = {
        node.findtext("p:DtldSts", namespaces=NS): int(
            node.findtext("p:DtldNbOfTxs", namespaces=NS)
        )
        for node in root.xpath("//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts", namespaces=NS)
    }
    assert per_status == counts_of(txs)


def test_two_payment_informations_reported_separately(assert_valid: Validate) -> None:
    """With several payment informations, each gets its own status block and transactions."""
    root = written(
        report_of([booked("A1")], [rejected("B1", Reason.AC06, "account blocked")]), assert_valid
    )
    blocks = root.xpath("//p:OrgnlPmtInfAndSts", namespaces=NS)
    assert [text(b, "p:OrgnlPmtInfId")[0] for b in blocks] == ["PMT1", "PMT2"]
    assert [text(b, "p:PmtInfSts")[0] for b in blocks] == ["ACSC", "RJCT"]
    assert text(blocks[1], "p:TxInfAndSts/p:OrgnlEndToEndId") == ["B1"]
    assert text(root, "//p:GrpSts") == ["PART"]


def test_file_level_rejection(assert_valid: Validate) -> None:
    """An unreadable file still gets an answer: group RJCT, FF01, an explanation, nothing else."""
    report = StatusReport(
        msg_id="GW20261125000043",
        created_at=CREATED,
        original_msg_id="UNKNOWN",
        original_msg_name="UNKNOWN",
        group_status=GroupStatus.RJCT,
        group_reason=Reason.FF01,
        group_additional_info="file is not well-formed XML: line 1, column 1",
        counts={},
    )
    root = written(report, assert_valid)
    group = root.find(".//p:OrgnlGrpInfAndSts", NS)
    assert group is not None
    assert text(group, "p:GrpSts") == ["RJCT"]
    assert text(group, "p:StsRsnInf/p:Rsn/p:Cd") == ["FF01"]
    assert text(group, "p:StsRsnInf/p:AddtlInf") == [
        "file is not well-formed XML: line 1, column 1"
    ]
    assert text(group, "p:OrgnlMsgNmId") == ["UNKNOWN"]
    assert root.xpath("//p:OrgnlPmtInfAndSts|//p:NbOfTxsPerSts", namespaces=NS) == []


def test_document_header() -> None:
    """The file is UTF-8 with an XML declaration, in the pain.002.001.03 namespace,
    stamped with the given time and the treasury's BIC."""
    out = io.BytesIO()
    pain002.write(report_of([booked("E1")]), out)
    data = out.getvalue()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(data)
    assert root.nsmap == {None: NS["p"]}
    assert text(root, "//p:GrpHdr/p:CreDtTm") == ["2026-11-25T10:15:01+02:00"]
    assert text(root, "//p:GrpHdr/p:DbtrAgt/p:FinInstnId/p:BIC") == ["TRELLV22"]


def test_long_and_odd_texts_fit_the_schema(assert_valid: Validate) -> None:
    """Long explanations are split over several AddtlInf lines, over-long names and ids cut,
    control characters dropped: the answer is still valid and still says what went wrong."""
    info = "EndToEndId 'X' repeats the payment of 2026-11-20 " * 8 + "\x00\x07end"
    tx = rejected(
        "E" * 50,
        Reason.AM05,
        info,
        creditor_name="Ā" * 300,
        amount_minor=100,
        currency="EUR",
    )
    root = written(report_of([tx]), assert_valid)
    (node,) = root.xpath("//p:TxInfAndSts", namespaces=NS)
    lines = text(node, "p:StsRsnInf/p:AddtlInf")
    assert len(lines) > 1 and all(len(line) <= 105 for line in lines)
    assert lines[0].startswith("EndToEndId 'X' repeats")
    assert text(node, "p:OrgnlEndToEndId") == ["E" * 35]
    assert text(node, "p:OrgnlTxRef/p:Cdtr/p:Nm") == ["Ā" * 140]


def test_unusable_original_values_are_left_out(assert_valid: Validate) -> None:
    """A rejection caused by a bad value does not make the answer invalid: an IBAN that
    is not one, an unsupported currency, a negative amount, an absurd CtrlSum are omitted."""
    txs = [
        rejected("E1", Reason.AC01, "bad IBAN", creditor_iban="not an iban"),
        rejected("E2", Reason.AM03, "currency XYZ", amount_minor=100, currency="XYZ"),
        rejected("E3", Reason.AM12, "negative amount", amount_minor=-5, currency="EUR"),
    ]
    root = written(report_of(txs, original_ctrl_sum=Decimal("1E+40")), assert_valid)
    assert root.xpath("//p:OrgnlTxRef|//p:OrgnlGrpInfAndSts/p:OrgnlCtrlSum", namespaces=NS) == []


@pytest.mark.parametrize("declared", [10**15, 99999999999999999999])
def test_a_number_of_transactions_that_does_not_fit_is_left_out(
    declared: int, assert_valid: Validate
) -> None:
    """A file rejected for its header's NbOfTxs of 16 or more digits: echoing it would make
    the only answer the client gets invalid (Max15NumericText); the largest that fits stays."""
    for number, kept in ((declared, []), (10**15 - 1, [str(10**15 - 1)])):
        root = written(report_of([booked("E1")], original_nb_of_txs=number), assert_valid)
        assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlNbOfTxs") == kept


def test_original_control_sum_kept_as_written(assert_valid: Validate) -> None:
    """The original file's CtrlSum (which may add up several currencies) is echoed as is."""
    root = written(report_of([booked("E1")], original_ctrl_sum=Decimal("1500.5")), assert_valid)
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlCtrlSum") == ["1500.5"]


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("4.500", "4.500"),  # as written, trailing zero and all
        ("123456789012345678", "123456789012345678"),  # 18 digits: the most the type holds
        ("1." + "0" * 30, "1"),  # more digits than the type holds, only zeros: the same number
        ("12345678901234567.8" + "0" * 20, "12345678901234567.8"),
        ("1234567890123456789", None),  # 19 digits: not a DecimalNumber, left out
        ("0." + "0" * 17 + "1", None),  # 18 fraction digits
    ],
)
def test_payment_information_control_sum_echoed_as_sent(
    sent: str, echoed: str | None, assert_valid: Validate
) -> None:
    """OrgnlPmtInfAndSts/OrgnlCtrlSum is the payment information's CtrlSum as sent, never a
    sum of its payments; a value the schema's DecimalNumber cannot hold is the same number
    without trailing zeros if that fits, else left out (the answer stays valid)."""
    info = PaymentInfoReport(
        pmt_inf_id="PMT1", nb_of_txs=1, ctrl_sum=Decimal(sent), status=GroupStatus.ACSC,
        counts={TxStatus.ACSC: 1}, transactions=[booked("E1")],
    )  # fmt: skip
    root = written(report_of([booked("E1")], payment_infos=[info]), assert_valid)
    expected = [echoed] if echoed is not None else []
    assert text(root, "//p:OrgnlPmtInfAndSts/p:OrgnlCtrlSum") == expected


def test_rejection_without_reason_is_refused() -> None:
    """Every rejected transaction tells the client why: one without a reason cannot exist."""
    with pytest.raises(ValueError, match="without a reason"):
        TxReport(end_to_end_id="E1", status=TxStatus.RJCT)


def test_naive_creation_time_is_refused() -> None:
    """Times in reports always carry their offset; a naive time is a programming error."""
    with pytest.raises(ValueError, match="time zone"):
        report_of([booked("E1")], created_at=dt.datetime(2026, 11, 25, 10, 0))


def many_booked(count: int) -> Iterator[TxReport]:
    for i in range(count):
        yield TxReport(
            end_to_end_id=f"E2E-{i:09d}",
            instr_id=f"I-{i:09d}",
            status=TxStatus.ACSC,
            acct_svcr_ref=f"L{i:012d}",
            amount_minor=100 + i,
            currency="EUR",
            requested_execution_date=dt.date(2026, 11, 25),
            creditor_name="Valsts kase",
            creditor_iban="LV80BANK0000435195001",
        )


@pytest.mark.slow
def test_large_report_streams_in_little_memory(tmp_path: Path, assert_valid: Validate) -> None:
    """A 200,000-transaction answer is written without holding it in memory, and is valid."""
    count = 200_000
    info = PaymentInfoReport(
        pmt_inf_id="PMT1",
        nb_of_txs=count,
        status=GroupStatus.ACSC,
        counts={TxStatus.ACSC: count},
        transactions=many_booked(count),
    )
    report = StatusReport(
        msg_id="GW-BIG",
        created_at=CREATED,
        original_msg_id="BIG",
        original_msg_name="pain.001.001.03",
        original_nb_of_txs=count,
        group_status=GroupStatus.ACSC,
        counts={TxStatus.ACSC: count},
        payment_infos=[info],
    )
    path = tmp_path / "big.xml"

    def write() -> None:
        with path.open("wb") as out:
            pain002.write(report, out)

    growth = peak_growth(write)
    assert growth < 50 * 1024 * 1024, f"memory rose by {growth / 1e6:.1f} MB"
    assert path.read_bytes().count(b"<TxInfAndSts>") == count
    assert_valid(path, MESSAGE)


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=[])))
def test_safe_text_drops_what_xml_cannot_carry_and_escapes_markup(text: str) -> None:
    """`xmlwrite.safe` skips its search for printable text: for any text, including
    control characters, lone surrogates and U+FFFE, it equals the full cleaning."""
    from gateway.outbound import xmlwrite

    expected = xmlwrite.escape(xmlwrite._NOT_XML_CHAR.sub("", text))
    assert xmlwrite.safe(text) == expected
