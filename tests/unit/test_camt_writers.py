"""camt.052/053/054 writers: statements, intraday reports and notifications a client reconciles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, overload

import pytest
from lxml import etree
from pycamt.parser import Camt053Parser

from gateway.inbound.parsed import USTRD_SEPARATOR
from gateway.outbound import account_report, camt052_v02, camt053_v02, camt054_v02
from gateway.outbound.account_report import (
    AccountReport,
    Entry,
    EntryDetail,
    ReportInvariantError,
    totals,
)
from tests.unit.peak_memory import peak_growth

Validate = Callable[[bytes | Path, str], None]
Writer = Callable[[AccountReport, BinaryIO], None]
RIGA = dt.timezone(dt.timedelta(hours=2))
DAY = dt.date(2026, 11, 25)
OWN_IBAN = "LV55TREL1234567890123"


def ns(message: str) -> dict[str, str]:
    return {"c": f"urn:iso:std:iso:20022:tech:xsd:{message}"}


def funding(ref: str, minor: int) -> Entry:
    return Entry(
        entry_ref=ref,
        amount_minor=minor,
        currency="EUR",
        credit=True,
        booking_date=DAY,
        value_date=DAY,
        acct_svcr_ref=ref,
        bank_tx_code=account_report.FUNDING,
        details=(EntryDetail(amount_minor=minor, acct_svcr_ref=ref, remittance="Budget 2026"),),
    )


def payment(i: int, minor: int, *, name: str = "SIA Piegādātājs") -> EntryDetail:
    return EntryDetail(
        amount_minor=minor,
        msg_id="CLIENT-MSG-1",
        pmt_inf_id="PMT-1",
        end_to_end_id=f"E2E-{i}",
        instr_id=f"INSTR-{i}",
        acct_svcr_ref=f"L{i:08d}",
        counterparty_name=name,
        counterparty_iban="LV80BANK0000435195001",
        counterparty_bic="HABALV22",
        remittance=f"Invoice {i}",
    )


def sent(ref: str, detail: EntryDetail) -> Entry:
    return Entry(
        entry_ref=ref,
        amount_minor=detail.amount_minor,
        currency="EUR",
        credit=False,
        booking_date=DAY,
        value_date=DAY,
        acct_svcr_ref=ref,
        bank_tx_code=account_report.SENT_SEPA,
        details=(detail,),
    )


def batch(ref: str, *details: EntryDetail) -> Entry:
    return Entry(
        entry_ref=ref,
        amount_minor=sum(d.amount_minor for d in details),
        currency="EUR",
        credit=False,
        booking_date=DAY,
        value_date=DAY,
        acct_svcr_ref=ref,
        bank_tx_code=account_report.SENT_INTERNAL,
        details=details,
        batch_booked=True,
    )


def day_entries() -> list[Entry]:
    """Funding 1000.00 in; one SEPA payment 150.25 out; one batch of three (10+20+30) out."""
    return [
        funding("N1", 100000),
        sent("N2", payment(1, 15025)),
        batch("N3", payment(2, 1000), payment(3, 2000), payment(4, 3000)),
    ]


def report_of(entries: Sequence[Entry], opening: int | None, **fields: Any) -> AccountReport:
    """A report over the business day whose closing balance is made to reconcile."""
    closing = None if opening is None else opening + totals(entries).net_minor
    defaults: dict[str, Any] = {
        "msg_id": "GW20261125000100",
        "report_id": "STMT-20261125-1",
        "created_at": dt.datetime(2026, 11, 25, 18, 30, 5, tzinfo=RIGA),
        "electronic_seq_nb": 42,
        "iban": OWN_IBAN,
        "currency": "EUR",
        "owner_name": "Rīgas pilsētas pašvaldība",
        "from_datetime": dt.datetime(2026, 11, 25, 0, 0, tzinfo=RIGA),
        "to_datetime": dt.datetime(2026, 11, 25, 18, 30, tzinfo=RIGA),
        "opening_minor": opening,
        "closing_minor": closing,
        "entries": entries,
    }
    return AccountReport(**(defaults | fields))


def written(write: Writer, report: AccountReport, message: str, assert_valid: Validate) -> bytes:
    out = io.BytesIO()
    write(report, out)
    assert_valid(out.getvalue(), message)
    return out.getvalue()


def texts(root: etree._Element, path: str, message: str) -> list[str]:
    return [str(t) for t in root.xpath(f"{path}/text()", namespaces=ns(message))]


def balances(root: etree._Element, message: str) -> dict[str, tuple[str, str]]:
    found = {}
    for bal in root.xpath("//c:Bal", namespaces=ns(message)):
        code = bal.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns(message))
        amount = bal.findtext("c:Amt", namespaces=ns(message))
        found[code] = (amount, bal.findtext("c:CdtDbtInd", namespaces=ns(message)))
    return found


def test_statement_of_a_business_day(assert_valid: Validate) -> None:
    """The end-of-day statement shows opening and closing balance, a summary that adds up,
    and every entry with its dates, ledger reference and bank transaction code."""
    message = "camt.053.001.02"
    data = written(camt053_v02.write, report_of(day_entries(), 50000), message, assert_valid)
    root = etree.fromstring(data)
    assert balances(root, message) == {"OPBD": ("500.00", "CRDT"), "CLBD": ("1289.75", "CRDT")}
    assert texts(root, "//c:Bal/c:Dt/c:Dt", message) == ["2026-11-25", "2026-11-25"]
    assert texts(root, "//c:Stmt/c:ElctrncSeqNb", message) == ["42"]
    summary = "//c:TxsSummry/c:"
    assert texts(root, summary + "TtlNtries/c:NbOfNtries", message) == ["3"]
    assert texts(root, summary + "TtlNtries/c:TtlNetNtryAmt", message) == ["789.75"]
    assert texts(root, summary + "TtlCdtNtries/c:Sum", message) == ["1000.00"]
    assert texts(root, summary + "TtlDbtNtries/c:Sum", message) == ["210.25"]
    (first,) = root.xpath("//c:Ntry[c:NtryRef='N1']", namespaces=ns(message))
    assert texts(first, "c:BkTxCd/c:Domn/c:Cd", message) == ["PMNT"]
    assert texts(first, "c:BkTxCd/c:Domn/c:Fmly/c:SubFmlyCd", message) == ["BOOK"]
    assert texts(first, "c:BookgDt/c:Dt", message) == texts(first, "c:ValDt/c:Dt", message)
    assert texts(root, "//c:Acct/c:Ownr/c:Nm", message) == ["Rīgas pilsētas pašvaldība"]
    assert texts(root, "//c:Acct/c:Svcr/c:FinInstnId/c:BIC", message) == ["TRELLV22"]


def test_batch_booked_payment_information_is_one_entry(assert_valid: Validate) -> None:
    """A batch-booked payment information appears as one debit for its total, with the
    number of transactions and one detail per transaction carrying the client's references."""
    message = "camt.053.001.02"
    data = written(camt053_v02.write, report_of(day_entries(), 0), message, assert_valid)
    (entry,) = etree.fromstring(data).xpath("//c:Ntry[c:NtryRef='N3']", namespaces=ns(message))
    assert texts(entry, "c:Amt", message) == ["60.00"]
    assert texts(entry, "c:NtryDtls/c:Btch/c:NbOfTxs", message) == ["3"]
    assert texts(entry, "c:NtryDtls/c:Btch/c:PmtInfId", message) == ["PMT-1"]
    details = entry.xpath("c:NtryDtls/c:TxDtls", namespaces=ns(message))
    assert [texts(d, "c:Refs/c:EndToEndId", message)[0] for d in details] == [
        "E2E-2",
        "E2E-3",
        "E2E-4",
    ]
    assert texts(details[0], "c:Refs/c:MsgId", message) == ["CLIENT-MSG-1"]
    assert texts(details[0], "c:AmtDtls/c:TxAmt/c:Amt", message) == ["10.00"]
    assert texts(details[0], "c:RltdPties/c:Cdtr/c:Nm", message) == ["SIA Piegādātājs"]
    assert texts(details[0], "c:RltdAgts/c:CdtrAgt/c:FinInstnId/c:BIC", message) == ["HABALV22"]
    assert texts(details[0], "c:RmtInf/c:Ustrd", message) == ["Invoice 2"]


def test_independent_parser_reads_what_we_wrote(assert_valid: Validate) -> None:
    """A third-party camt.053 parser (pycamt) reads the same balances and entries back."""
    report = report_of(day_entries(), 50000)
    parsed = Camt053Parser(written(camt053_v02.write, report, "camt.053.001.02", assert_valid))
    (statement,) = parsed.get_statement_info()
    assert statement["IBAN"] == OWN_IBAN
    assert statement["Currency"] == "EUR"
    assert Decimal(statement["OpeningBalance"]) == Decimal("500.00")
    assert Decimal(statement["ClosingBalance"]) == Decimal("1289.75")
    assert parsed.get_group_header()["MessageID"] == "GW20261125000100"
    rows = parsed.get_transactions()
    assert [(r["TransactionID"], r["CreditDebitIndicator"]) for r in rows] == [
        ("N1", "CRDT"),
        ("N2", "DBIT"),
        ("N3", "DBIT"),
        ("N3", "DBIT"),
        ("N3", "DBIT"),
    ]
    assert [r.get("EndToEndId") for r in rows] == [None, "E2E-1", "E2E-2", "E2E-3", "E2E-4"]
    assert [Decimal(r["Amount"]) for r in rows] == [
        Decimal(v) for v in ("1000.00", "150.25", "10.00", "20.00", "30.00")
    ]
    assert rows[1]["CreditorIBAN"] == "LV80BANK0000435195001"
    assert {r["BookingDate"] for r in rows} == {"2026-11-25"}


def test_negative_balances(assert_valid: Validate) -> None:
    """An overdrawn account shows its balances as absolute amounts marked DBIT."""
    message = "camt.053.001.02"
    entries = [sent("N1", payment(1, 30000)), funding("N2", 10000)]
    data = written(camt053_v02.write, report_of(entries, -50000), message, assert_valid)
    assert balances(etree.fromstring(data), message) == {
        "OPBD": ("500.00", "DBIT"),
        "CLBD": ("700.00", "DBIT"),
    }
    net = "//c:TxsSummry/c:TtlNtries/c:"
    root = etree.fromstring(data)
    assert texts(root, net + "TtlNetNtryAmt", message) == ["200.00"]
    assert texts(root, net + "CdtDbtInd", message) == ["DBIT"]


def test_statement_that_does_not_reconcile_is_refused() -> None:
    """A statement whose opening plus entries is not its closing is never written."""
    report = dataclasses.replace(report_of(day_entries(), 50000), closing_minor=128976)
    out = io.BytesIO()
    with pytest.raises(ReportInvariantError, match="!= closing 128976"):
        camt053_v02.write(report, out)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            dataclasses.replace(batch("N", payment(1, 100), payment(2, 200)), amount_minor=301),
            "sum",
        ),
        (
            dataclasses.replace(batch("N", payment(1, 100), payment(2, 200)), batch_booked=False),
            "not batch-booked",
        ),
        (dataclasses.replace(funding("N", 100), currency="USD"), "currency"),
        (dataclasses.replace(funding("N", 100), amount_minor=0, details=()), "not positive"),
    ],
)
def test_entries_that_do_not_add_up_are_refused(entry: Entry, problem: str) -> None:
    """An entry whose transactions do not sum to it, or in the wrong currency, stops the report."""
    with pytest.raises(ReportInvariantError, match=problem):
        camt053_v02.write(report_of([entry], 0), io.BytesIO())


class Miscounted:
    """A batch's transactions as read from the database, counted as three, two read."""

    def __init__(self, *details: EntryDetail) -> None:
        self.details = details

    def __len__(self) -> int:
        return len(self.details) + 1

    def __iter__(self) -> Iterator[EntryDetail]:
        return iter(self.details)


def test_a_batch_whose_transactions_are_not_as_many_as_counted_is_refused() -> None:
    """A batch entry's NbOfTxs is counted by the database before its TxDtls are read, a
    page at a time: the transactions written must be as many as it says."""
    entry = dataclasses.replace(
        batch("N", payment(1, 100), payment(2, 200)),
        details=Miscounted(payment(1, 100), payment(2, 200)),
    )
    for write in (camt053_v02.write, camt054_v02.write):
        with pytest.raises(ReportInvariantError, match="2 details of sum 300, not 3 of 300"):
            write(report_of([entry], 0), io.BytesIO())


def test_statement_needs_balances() -> None:
    """A statement or intraday report without balances is a fault, not an empty statement."""
    for write in (camt053_v02.write, camt052_v02.write):
        with pytest.raises(ReportInvariantError, match="balance required"):
            write(report_of(day_entries(), None), io.BytesIO())


def test_intraday_report(assert_valid: Validate) -> None:
    """The intraday report shows the opening and the interim booked balance at its time."""
    message = "camt.052.001.02"
    data = written(camt052_v02.write, report_of(day_entries(), 50000), message, assert_valid)
    root = etree.fromstring(data)
    assert balances(root, message) == {"OPBD": ("500.00", "CRDT"), "ITBD": ("1289.75", "CRDT")}
    assert texts(root, "//c:Bal[c:Tp/c:CdOrPrtry/c:Cd='ITBD']/c:Dt/c:DtTm", message) == [
        "2026-11-25T18:30:00+02:00"
    ]
    assert len(root.xpath("//c:Rpt/c:Ntry", namespaces=ns(message))) == 3


def test_notification_without_balances(assert_valid: Validate) -> None:
    """A debit/credit notification lists the executed entries and no balances."""
    message = "camt.054.001.02"
    report = report_of([sent("N7", payment(7, 4200))], None)
    root = etree.fromstring(written(camt054_v02.write, report, message, assert_valid))
    assert root.xpath("//c:Bal", namespaces=ns(message)) == []
    assert texts(root, "//c:Ntfctn/c:Ntry/c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId", message) == [
        "E2E-7"
    ]


def test_long_texts_fit_the_schema(assert_valid: Validate) -> None:
    """Over-long names are cut to 140 characters; remittance keeps its lines as sent, each
    cut to a Ustrd's 140 characters, so the statement stays valid."""
    message = "camt.053.001.02"
    sent_lines = ["Rēķins 2026/0001", "x" * 200, "Līgums 7"]
    detail = dataclasses.replace(
        payment(1, 500, name="Ž" * 200), remittance=USTRD_SEPARATOR.join(sent_lines)
    )
    report = report_of([sent("N" * 40, detail)], 0, owner_name="O" * 300)
    root = etree.fromstring(written(camt053_v02.write, report, message, assert_valid))
    assert texts(root, "//c:Acct/c:Ownr/c:Nm", message) == ["O" * 140]
    assert texts(root, "//c:RltdPties/c:Cdtr/c:Nm", message) == ["Ž" * 140]
    assert texts(root, "//c:Ntry/c:NtryRef", message) == ["N" * 35]
    lines = texts(root, "//c:RmtInf/c:Ustrd", message)
    assert lines == ["Rēķins 2026/0001", "x" * 140, "Līgums 7"]


def test_structured_remittance_is_carried_as_sent(assert_valid: Validate) -> None:
    """Strd blocks (creditor reference with its type and issuer, referred documents and
    amounts) reach the statement as sent, after the Ustrd lines (SPEC §6)."""
    message = "camt.053.001.02"
    strd = (
        "<Strd><RfrdDocInf><Tp><CdOrPrtry><Cd>CINV</Cd></CdOrPrtry></Tp><Nb>INV-7</Nb>"
        "<RltdDt>2026-11-20</RltdDt></RfrdDocInf><RfrdDocAmt><RmtdAmt Ccy=\"EUR\">5.00"
        "</RmtdAmt></RfrdDocAmt><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry>"
        "<Issr>ISO</Issr></Tp><Ref>RF18539007547034</Ref></CdtrRefInf></Strd>"
    )
    detail = dataclasses.replace(
        payment(1, 500), remittance="Rēķins INV-7", remittance_structured=strd
    )
    root = etree.fromstring(
        written(camt053_v02.write, report_of([sent("N1", detail)], 0), message, assert_valid)
    )
    assert texts(root, "//c:RmtInf/c:Ustrd", message) == ["Rēķins INV-7"]
    assert texts(root, "//c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref", message) == ["RF18539007547034"]
    assert texts(root, "//c:RmtInf/c:Strd/c:CdtrRefInf/c:Tp/c:Issr", message) == ["ISO"]
    assert texts(root, "//c:RmtInf/c:Strd/c:RfrdDocInf/c:Nb", message) == ["INV-7"]


def test_currency_without_minor_units(assert_valid: Validate) -> None:
    """A JPY account's amounts are written without decimals."""
    message = "camt.053.001.02"
    entry = dataclasses.replace(funding("N1", 1500), currency="JPY")
    report = report_of([entry], 1000, currency="JPY")
    root = etree.fromstring(written(camt053_v02.write, report, message, assert_valid))
    assert balances(root, message)["CLBD"] == ("2500", "CRDT")


def test_totals() -> None:
    """The summary counts entries per side and nets credits against debits."""
    result = totals(day_entries())
    assert (result.count, result.credit_count, result.debit_count) == (3, 1, 2)
    assert (result.credits_minor, result.debits_minor, result.net_minor) == (100000, 21025, 78975)


class ManyEntries(Sequence[Entry]):
    """A lazy statement of `count` debits of 1.00 each: nothing is held in memory.

    Entries carry no transaction details: memory does not depend on their size, and
    the lxml writer costs about 3 µs per element, which would make this test slow."""

    def __init__(self, count: int) -> None:
        self.size = count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Entry]: ...
    def __getitem__(self, index: int | slice) -> Entry | Sequence[Entry]:
        if isinstance(index, slice):
            raise NotImplementedError
        if not 0 <= index < self.size:
            raise IndexError(index)
        return Entry(
            entry_ref=f"N{index}",
            amount_minor=100,
            currency="EUR",
            credit=False,
            booking_date=DAY,
            value_date=DAY,
            acct_svcr_ref=f"L{index:012d}",
            bank_tx_code=account_report.SENT_INTERNAL,
        )


@pytest.mark.slow
def test_large_statement_streams_in_little_memory(tmp_path: Path, assert_valid: Validate) -> None:
    """A 200,000-entry statement is checked and written without holding it in memory,
    and it is valid."""
    count = 200_000
    report = report_of(ManyEntries(count), 0, closing_minor=-100 * count)
    path = tmp_path / "big.xml"

    def write() -> None:
        with path.open("wb") as out:
            camt053_v02.write(report, out)

    growth = peak_growth(write)
    assert growth < 50 * 1024 * 1024, f"memory rose by {growth / 1e6:.1f} MB"
    assert path.read_bytes().count(b"<Ntry>") == count
    assert_valid(path, "camt.053.001.02")


class Once:
    """Entries that may be read once only, as a report with totals counted beforehand
    reads them (`entries.Entries` reads the database afresh at each pass)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries, self.passes = entries, 0

    def __iter__(self) -> Any:
        self.passes += 1
        assert self.passes == 1, "read twice"
        return iter(self.entries)


def test_totals_counted_beforehand_are_checked_as_the_entries_are_written(
    assert_valid: Validate,
) -> None:
    """With the totals counted by the database, the entries are read once (not twice: a
    day of 600,000 entries was read whole), each checked as it is written and all of them,
    at the end, against the totals: a statement that does not add up is refused."""
    entries = day_entries()
    right = account_report.totals(entries)
    opening = 50000
    closing = opening + right.net_minor
    report = report_of(entries, opening, closing_minor=closing, totals=right)
    report = dataclasses.replace(report, entries=Once(entries))
    assert written(camt053_v02.write, report, "camt.053.001.02", assert_valid)
    off = dataclasses.replace(right, credits_minor=right.credits_minor + 1)
    wrong = report_of(entries, opening, closing_minor=closing + 1, totals=off)
    with pytest.raises(ReportInvariantError, match="the entries add up to"):
        camt053_v02.write(wrong, io.BytesIO())
    bad = [*entries[:-1], dataclasses.replace(entries[-1], currency="USD")]
    with pytest.raises(ReportInvariantError, match="currency"):
        camt053_v02.write(
            report_of(bad, opening, closing_minor=closing, totals=right), io.BytesIO()
        )
