"""Account statements a client reconciles (SPEC §8, issue 5): camt.053 at end of day,
camt.052 on request, `ekase-gateway eod` from the command line.

Everything runs through the real pipeline on a real SQLite ledger with a FixedClock;
each camt file the client finds in `out/` is validated against the official XSD and
read back with an independent parser written here (and with pycamt), never with the
gateway's own model. The parsing helpers are shared with the property and
notification tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import structlog.testing
from lxml import etree
from pycamt.parser import Camt053Parser
from sqlalchemy import text

from gateway.outbound import entries, reports, statements
from gateway.outbound.entries import Entries
from gateway.samples import SamplePmtInf, SampleTx, iban_lv
from gateway.worker import Worker
from ledger import calendar
from tests.pipeline_fixtures import (
    A_BLOCKED,
    A_MAIN,
    A_SMALL,
    A_USD,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    EXTERNAL_BIC,
    RIGA,
    TODAY,
    Answer,
    Batch,
    Installation,
)

Validate = Callable[[bytes | Path, str], None]
CAMT053 = "camt.053.001.02"
CAMT052 = "camt.052.001.02"
CAMT054 = "camt.054.001.02"
REPORT_TAG = {CAMT053: "Stmt", CAMT052: "Rpt", CAMT054: "Ntfctn"}
NON_SEPA = "AE070331234567890123456"  # United Arab Emirates: an IBAN country outside SEPA
NON_SEPA_BIC = "EBILAEAD"
EKASE = Path(sys.executable).parent / "ekase-gateway"

ESCT = ("PMNT", "ICDT", "ESCT")
XBCT = ("PMNT", "ICDT", "XBCT")
DMCT_SENT = ("PMNT", "ICDT", "DMCT")
DMCT_RECEIVED = ("PMNT", "RCDT", "DMCT")
FUNDING = ("PMNT", "RCDT", "BOOK")


# -- reading camt as a client would (independent of gateway.outbound) -----------------------


def minor(amount: str, currency: str) -> int:
    """Major-unit text to minor units (JPY has none; every other currency here has 2)."""
    return int(Decimal(amount).scaleb(0 if currency == "JPY" else 2))


@dataclass(frozen=True)
class TxDetail:
    acct_svcr_ref: str | None
    msg_id: str | None
    pmt_inf_id: str | None
    end_to_end_id: str | None
    amount_minor: int
    code: tuple[str, ...] | None
    counterparty_name: str | None
    counterparty_iban: str | None
    counterparty_bic: str | None
    remittance: str | None


@dataclass(frozen=True)
class CamtEntry:
    acct_svcr_ref: str
    amount_minor: int
    credit: bool
    booking_date: dt.date
    value_date: dt.date
    code: tuple[str, ...]
    batch: tuple[str | None, str | None, int, int] | None  # MsgId, PmtInfId, NbOfTxs, total
    details: list[TxDetail]

    @property
    def signed(self) -> int:
        return self.amount_minor if self.credit else -self.amount_minor


@dataclass
class CamtReport:
    path: Path
    message: str
    iban: str
    currency: str
    owner: str | None
    seq: int
    legal_seq: int | None  # LglSeqNb, written in camt.053
    balances: dict[str, tuple[int, str]]  # code -> (signed minor, date text)
    entries: list[CamtEntry]
    summary_count: int | None

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.balances["OPBD"][1][:10])

    @property
    def opening(self) -> int:
        return self.balances["OPBD"][0]

    @property
    def closing(self) -> int:
        return self.balances["CLBD"][0]

    @property
    def net(self) -> int:
        return sum(e.signed for e in self.entries)

    def details(self) -> list[TxDetail]:
        return [d for e in self.entries for d in e.details]


def _code(element: etree._Element | None, ns: dict[str, str]) -> tuple[str, ...] | None:
    if element is None:
        return None
    return (
        element.findtext("c:Domn/c:Cd", namespaces=ns),
        element.findtext("c:Domn/c:Fmly/c:Cd", namespaces=ns),
        element.findtext("c:Domn/c:Fmly/c:SubFmlyCd", namespaces=ns),
    )


def read_camt(path: Path) -> CamtReport:
    root = etree.parse(str(path)).getroot()
    message = root.tag.split("}")[0].rsplit(":", 1)[-1]
    ns = {"c": f"urn:iso:std:iso:20022:tech:xsd:{message}"}
    report = root.find(f"*/c:{REPORT_TAG[message]}", ns)
    assert report is not None, f"{path.name}: no {REPORT_TAG[message]}"
    currency = report.findtext("c:Acct/c:Ccy", namespaces=ns)
    balances = {}
    for bal in report.findall("c:Bal", ns):
        amount = minor(bal.findtext("c:Amt", namespaces=ns), currency)
        if bal.findtext("c:CdtDbtInd", namespaces=ns) == "DBIT":
            amount = -amount
        when = bal.findtext("c:Dt/c:Dt", namespaces=ns) or bal.findtext(
            "c:Dt/c:DtTm", namespaces=ns
        )
        balances[bal.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns)] = (amount, when)
    entries = []
    for ntry in report.findall("c:Ntry", ns):
        credit = ntry.findtext("c:CdtDbtInd", namespaces=ns) == "CRDT"
        btch = ntry.find("c:NtryDtls/c:Btch", ns)
        batch = None
        if btch is not None:
            batch = (
                btch.findtext("c:MsgId", namespaces=ns),
                btch.findtext("c:PmtInfId", namespaces=ns),
                int(btch.findtext("c:NbOfTxs", namespaces=ns)),
                minor(btch.findtext("c:TtlAmt", namespaces=ns), currency),
            )
        side = "Dbtr" if credit else "Cdtr"
        details = [
            TxDetail(
                acct_svcr_ref=tx.findtext("c:Refs/c:AcctSvcrRef", namespaces=ns),
                msg_id=tx.findtext("c:Refs/c:MsgId", namespaces=ns),
                pmt_inf_id=tx.findtext("c:Refs/c:PmtInfId", namespaces=ns),
                end_to_end_id=tx.findtext("c:Refs/c:EndToEndId", namespaces=ns),
                amount_minor=minor(tx.findtext("c:AmtDtls/c:TxAmt/c:Amt", namespaces=ns), currency),
                code=_code(tx.find("c:BkTxCd", ns), ns),
                counterparty_name=tx.findtext(f"c:RltdPties/c:{side}/c:Nm", namespaces=ns),
                counterparty_iban=tx.findtext(
                    f"c:RltdPties/c:{side}Acct/c:Id/c:IBAN", namespaces=ns
                ),
                counterparty_bic=tx.findtext(
                    f"c:RltdAgts/c:{side}Agt/c:FinInstnId/c:BIC", namespaces=ns
                ),
                remittance="".join(t.text or "" for t in tx.findall("c:RmtInf/c:Ustrd", ns))
                or None,
            )
            for tx in ntry.findall("c:NtryDtls/c:TxDtls", ns)
        ]
        entries.append(
            CamtEntry(
                acct_svcr_ref=ntry.findtext("c:AcctSvcrRef", namespaces=ns),
                amount_minor=minor(ntry.findtext("c:Amt", namespaces=ns), currency),
                credit=credit,
                booking_date=dt.date.fromisoformat(ntry.findtext("c:BookgDt/c:Dt", namespaces=ns)),
                value_date=dt.date.fromisoformat(ntry.findtext("c:ValDt/c:Dt", namespaces=ns)),
                code=_code(ntry.find("c:BkTxCd", ns), ns) or (),
                batch=batch,
                details=details,
            )
        )
    count = report.findtext("c:TxsSummry/c:TtlNtries/c:NbOfNtries", namespaces=ns)
    return CamtReport(
        path=path,
        message=message,
        iban=report.findtext("c:Acct/c:Id/c:IBAN", namespaces=ns),
        currency=currency,
        owner=report.findtext("c:Acct/c:Ownr/c:Nm", namespaces=ns),
        seq=int(report.findtext("c:ElctrncSeqNb", namespaces=ns)),
        legal_seq=int(legal) if (legal := report.findtext("c:LglSeqNb", namespaces=ns)) else None,
        balances=balances,
        entries=entries,
        summary_count=int(count) if count is not None else None,
    )


def camt_files(inst: Installation, message: str, client: str = CLIENT_A) -> list[Path]:
    return sorted(inst.outbox(client).glob(f"*_{message}_*.xml"))


def statements_of(
    inst: Installation, client: str = CLIENT_A, validate: Validate | None = None
) -> dict[tuple[str, dt.date], CamtReport]:
    """Every camt.053 in the client's out/, by (IBAN, business day); each validated."""
    found: dict[tuple[str, dt.date], CamtReport] = {}
    for path in camt_files(inst, CAMT053, client):
        if validate is not None:
            validate(path, CAMT053)
        report = read_camt(path)
        key = (report.iban, report.day)
        assert key not in found, f"two statements for {key}: {found[key].path.name}, {path.name}"
        found[key] = report
    return found


def ledger_movement(inst: Installation, iban: str, day: dt.date) -> int:
    """The account's movement booked on `day`, straight from the postings table."""
    with inst.env.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COALESCE(SUM(p.amount_minor), 0) FROM ledger_postings p "
                    "JOIN ledger_accounts a ON a.id = p.account_id "
                    "WHERE a.iban = :iban AND p.booking_date = :day"
                ),
                {"iban": iban, "day": day},
            ).scalar_one()
        )


def ledger_balance_through(inst: Installation, iban: str, day: dt.date) -> int:
    with inst.env.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COALESCE(SUM(p.amount_minor), 0) FROM ledger_postings p "
                    "JOIN ledger_accounts a ON a.id = p.account_id "
                    "WHERE a.iban = :iban AND p.booking_date <= :day"
                ),
                {"iban": iban, "day": day},
            ).scalar_one()
        )


def riga(day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), RIGA)


def close_day(inst: Installation, day: dt.date) -> list[statements.StatementResult]:
    """End of `day` at 18:30 Riga: the statements of every client account."""
    inst.clock.set(riga(day, "18:30"))
    return statements.write_statements(inst.env, day)


def refs(answer: Answer) -> dict[str, str]:
    """EndToEndId -> AcctSvcrRef of the accepted payments in a pain.002."""
    found = {t.end_to_end_id: t.acct_svcr_ref for t in answer.transactions() if t.status == "ACSC"}
    assert all(found.values()), f"an ACSC payment without AcctSvcrRef in {answer.path.name}"
    return found


def entry_by_ref(report: CamtReport, ref: str) -> CamtEntry:
    """The entry that carries the payment with AcctSvcrRef `ref` (its own, or its batch's)."""
    matches = [
        e
        for e in report.entries
        if e.acct_svcr_ref == ref or ref in {d.acct_svcr_ref for d in e.details}
    ]
    assert len(matches) == 1, f"{len(matches)} entries {ref} in {report.path.name}"
    return matches[0]


# -- what an entry carries -------------------------------------------------------------------


def test_batch_booked_payment_information_is_one_entry_with_a_detail_per_payment(
    inst: Installation, assert_valid: Validate
) -> None:
    """A client's accountant sees a batch-booked payment information as ONE debit of its
    total on the statement (NtryDtls/Btch with the original MsgId and PmtInfId), with one
    TxDtls per payment carrying the AcctSvcrRef the pain.002 gave it, the EndToEndId,
    the creditor's name, IBAN and BIC and the remittance text; SEPA in euro is ESCT."""
    data = (
        Batch(msg_id="SALARY-11")
        .tx("S-1", "100.00", creditor_name="Jānis Bērziņš", remittance="Alga novembris 1")
        .tx("S-2", "250.50", creditor_name="Anna Liepa", remittance="Alga novembris 2")
        .tx("S-3", "0.01", creditor_name="Pēteris Ozols", remittance="Alga novembris 3")
        .build()
    )
    answer = inst.submit(data)
    assert answer.group_status == "ACSC"
    acct_refs = refs(answer)
    close_day(inst, TODAY)

    statement = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]
    debits = [e for e in statement.entries if not e.credit]
    assert len(debits) == 1, [e.acct_svcr_ref for e in debits]
    entry = debits[0]
    assert entry.amount_minor == 35051
    assert entry.acct_svcr_ref.startswith("EB")
    assert entry.acct_svcr_ref not in acct_refs.values()
    assert entry.batch == ("SALARY-11", "SALARY-11-P1", 3, 35051)
    assert entry.code == ESCT
    assert (entry.booking_date, entry.value_date) == (TODAY, TODAY)
    got = {d.end_to_end_id: d for d in entry.details}
    assert set(got) == {"S-1", "S-2", "S-3"}
    for e2e, name, amount, n in (
        ("S-1", "Jānis Bērziņš", 10000, 1),
        ("S-2", "Anna Liepa", 25050, 2),
        ("S-3", "Pēteris Ozols", 1, 3),
    ):
        detail = got[e2e]
        assert detail.acct_svcr_ref == acct_refs[e2e]
        assert (detail.msg_id, detail.pmt_inf_id) == ("SALARY-11", "SALARY-11-P1")
        assert detail.amount_minor == amount
        assert detail.counterparty_name == name
        assert detail.counterparty_iban == EXTERNAL
        assert detail.counterparty_bic == EXTERNAL_BIC
        assert detail.remittance == f"Alga novembris {n}"
        assert detail.code == ESCT
    assert sum(d.amount_minor for d in entry.details) == entry.amount_minor


def test_batch_booking_false_gives_one_entry_per_payment(
    inst: Installation, assert_valid: Validate
) -> None:
    """With BtchBookg=false the client asked to see every payment on its own: one entry
    per payment, each entry's AcctSvcrRef the payment's own, no Btch element."""
    pmt = SamplePmtInf(
        pmt_inf_id="SINGLE-P1",
        debtor_iban=A_MAIN,
        transactions=[
            SampleTx("N-1", "12.00", EXTERNAL, creditor_bic=EXTERNAL_BIC),
            SampleTx("N-2", "13.00", EXTERNAL, creditor_bic=EXTERNAL_BIC),
        ],
        execution_date=TODAY.isoformat(),
        batch_booking=False,
        nb_of_txs="2",
        ctrl_sum="25.00",
    )
    answer = inst.submit(Batch(msg_id="SINGLE", extra_pmts=[pmt]).build())
    acct_refs = refs(answer)
    assert set(acct_refs) == {"N-1", "N-2"}
    close_day(inst, TODAY)

    statement = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]
    debits = [e for e in statement.entries if not e.credit]
    assert sorted(e.acct_svcr_ref for e in debits) == sorted(acct_refs.values())
    for entry in debits:
        assert entry.batch is None
        assert len(entry.details) == 1
        (detail,) = entry.details
        assert detail.acct_svcr_ref == entry.acct_svcr_ref
        assert entry.amount_minor == detail.amount_minor
        assert (detail.msg_id, detail.pmt_inf_id) == ("SINGLE", "SINGLE-P1")
        assert entry.code == ESCT


def test_a_statement_reads_its_entries_a_page_at_a_time_and_misses_none(
    inst: Installation, assert_valid: Validate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's entries were read whole into memory, twice over with their payments: a
    statement of 600,000 entries took more than a gigabyte (a tester; the unit allows the
    daemon 1 GB). They are read a page of postings at a time as the statement is written
    (here 3 a page, 11 postings on the account): every entry once, in posting order, the
    balances reconciling."""
    monkeypatch.setattr(Entries, "page_postings", 3)
    pmt = SamplePmtInf(
        pmt_inf_id="PAGED-P1",
        debtor_iban=A_MAIN,
        transactions=[
            SampleTx(f"G-{n}", f"{n}.00", EXTERNAL, creditor_bic=EXTERNAL_BIC)
            for n in range(1, 11)
        ],
        execution_date=TODAY.isoformat(),
        batch_booking=False,
    )
    answer = inst.submit(Batch(msg_id="PAGED", extra_pmts=[pmt]).build())
    acct_refs = refs(answer)
    pages: list[int] = []
    paged = Entries._page

    def counted(self: Entries, after: int) -> list[object]:
        found = paged(self, after)
        pages.append(len(found))
        return found

    monkeypatch.setattr(Entries, "_page", counted)
    close_day(inst, TODAY)
    statement = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]
    debits = [e for e in statement.entries if not e.credit]
    assert [e.acct_svcr_ref for e in debits] == [acct_refs[f"G-{n}"] for n in range(1, 11)]
    assert [e.amount_minor for e in debits] == [n * 100 for n in range(1, 11)]
    assert statement.opening - 5500 + sum(e.amount_minor for e in statement.entries if e.credit) \
        == statement.closing  # fmt: skip
    assert max(pages) == 3 and pages.count(0) >= 2  # a page at a time, each pass to the end

def test_a_batch_entry_reads_its_payments_a_page_at_a_time_and_misses_none(
    inst: Installation, assert_valid: Validate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch-booked payment information is one entry, its payments its TxDtls: they were
    read whole with the entry (a payroll of 1,000,000 in one batch, ~1.5 GB at the end of
    the day; the unit allows the daemon 1 GB). They are read a page of payments at a time
    as the entry is written (here 3 a page): every payment once, in order, on the debit;
    on a treasury creditor's credit only those to it; the counts and sums as booked."""
    monkeypatch.setattr(entries, "page_payments", 3)
    pages: list[int] = []
    paged = entries._Carried._page

    def counted(self: entries._Carried, after: int) -> list[object]:
        found = paged(self, after)
        pages.append(len(found))
        return found

    monkeypatch.setattr(entries._Carried, "_page", counted)
    batch = Batch(msg_id="PAYROLL", batch_booking=True)
    for n in range(1, 11):
        batch.tx(f"P-{n}", f"{n}.00", **({"creditor": B_MAIN} if n % 4 == 0 else {}))
    answer = inst.submit(batch.build())
    acct_refs = refs(answer)
    close_day(inst, TODAY)
    sent = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]
    (debit,) = [e for e in sent.entries if not e.credit]
    assert debit.batch is not None and debit.batch[2:] == (10, 5500)
    assert [d.end_to_end_id for d in debit.details] == [f"P-{n}" for n in range(1, 11)]
    assert [d.acct_svcr_ref for d in debit.details] == [acct_refs[f"P-{n}"] for n in range(1, 11)]
    assert debit.amount_minor == sum(d.amount_minor for d in debit.details) == 5500
    assert debit.code == ("PMNT", "ICDT", "OTHR")  # internal and SEPA: each TxDtls says
    received = statements_of(inst, CLIENT_B, validate=assert_valid)[(B_MAIN, TODAY)]
    credit = entry_by_ref(received, acct_refs["P-4"])
    assert credit.credit and [d.end_to_end_id for d in credit.details] == ["P-4", "P-8"]
    assert credit.amount_minor == 1200 and credit.batch is not None and credit.batch[2] == 2
    assert pages and max(pages) == 3


def test_bank_transaction_codes_tell_sepa_cross_border_internal_and_funding_apart(
    inst: Installation, assert_valid: Validate
) -> None:
    """The bank transaction code lets a client's reconciliation rules sort entries:
    ESCT for euro to a SEPA IBAN, XBCT for euro to a non-SEPA IBAN and for US dollars,
    DMCT for a transfer to another treasury account (RCDT/DMCT on the receiving side,
    with the payer as counterparty), RCDT/BOOK for the treasury's funding."""
    data = Batch(msg_id="MIXED").tx("C-SEPA", "1.00", remittance="SEPA").build()
    sepa = refs(inst.submit(data))
    cross = refs(
        inst.submit(
            Batch(msg_id="NONSEPA")
            .tx("C-AE", "2.00", creditor=NON_SEPA, creditor_bic=NON_SEPA_BIC, remittance="AE")
            .build()
        )
    )
    dollars = refs(
        inst.submit(
            Batch(msg_id="USD", debtor=A_USD)
            .tx("C-USD", "3.00", creditor=NON_SEPA, currency="USD", creditor_bic=NON_SEPA_BIC)
            .build()
        )
    )
    internal = refs(
        inst.submit(
            Batch(msg_id="INTERNAL")
            .tx("C-INT", "4.00", creditor=B_MAIN, creditor_name="Iestāde B", remittance="Līgums 7")
            .build()
        )
    )
    close_day(inst, TODAY)
    a = statements_of(inst, CLIENT_A, assert_valid)
    b = statements_of(inst, CLIENT_B, assert_valid)

    main = a[(A_MAIN, TODAY)]
    for ref, code in (
        (sepa["C-SEPA"], ESCT),
        (cross["C-AE"], XBCT),
        (internal["C-INT"], DMCT_SENT),
    ):
        (entry,) = [e for e in main.entries if ref in {d.acct_svcr_ref for d in e.details}]
        assert (entry.code, entry.details[0].code, entry.credit) == (code, code, False), ref
    ae = next(d for d in main.details() if d.end_to_end_id == "C-AE")
    assert (ae.counterparty_iban, ae.counterparty_bic, ae.remittance) == (
        NON_SEPA,
        NON_SEPA_BIC,
        "AE",
    )

    usd = a[(A_USD, TODAY)]
    (usd_entry,) = [e for e in usd.entries if not e.credit]
    assert usd_entry.code == XBCT
    assert [d.acct_svcr_ref for d in usd_entry.details] == [dollars["C-USD"]]
    assert usd.currency == "USD"

    sent = entry_by_ref(main, internal["C-INT"])
    assert sent.details[0].counterparty_iban == B_MAIN
    assert sent.details[0].counterparty_name == "Iestāde B"
    received = entry_by_ref(b[(B_MAIN, TODAY)], internal["C-INT"])
    assert received.credit and received.code == DMCT_RECEIVED
    (detail,) = received.details
    assert detail.code == DMCT_RECEIVED
    assert detail.counterparty_iban == A_MAIN
    assert detail.counterparty_name  # the payer's name from the pain.001
    assert (detail.end_to_end_id, detail.msg_id, detail.remittance) == (
        "C-INT",
        "INTERNAL",
        "Līgums 7",
    )
    assert received.amount_minor == 400

    fundings = [e for e in main.entries if e.credit]
    assert len(fundings) == 1 and fundings[0].code == FUNDING
    assert fundings[0].amount_minor == 100_000_00
    assert fundings[0].acct_svcr_ref.startswith("FUND")
    assert fundings[0].details[0].counterparty_name


def test_statement_balances_reconcile_and_each_day_opens_at_the_previous_close(
    inst: Installation, assert_valid: Validate
) -> None:
    """A client checks OPBD + credits − debits = CLBD on every statement and that each
    day opens where the previous one closed, across a weekend; the balances are the
    ledger's, and a payment entered on Friday evening after end of day is booked on
    Monday (books close at 18:30)."""
    friday = dt.date(2026, 11, 27)
    monday = dt.date(2026, 11, 30)
    inst.submit(Batch(msg_id="WED").tx("W-1", "10.00").tx("W-2", "5.00", creditor=B_MAIN).build())
    close_day(inst, TODAY)
    # Thursday nobody closes the day (daemon down); Friday's end of day catches up.
    inst.clock.set(riga(friday, "09:00"))
    inst.submit(Batch(msg_id="FRI", execution_date=friday.isoformat()).tx("F-1", "7.25").build())
    inst.clock.set(riga(friday, "18:30"))
    with structlog.testing.capture_logs() as logged:
        assert statements.run_due_eod(inst.env) == 10 * 2  # Thursday's and Friday's
    # the log names the day each statement is of, not the day the catch-up ran
    stated = [(e["day"], e["written"]) for e in logged if e["event"] == "eod.statements"]
    assert stated == [("2026-11-26", 10), ("2026-11-27", 10)]
    inst.clock.set(riga(friday, "19:00"))
    late = refs(
        inst.submit(
            Batch(msg_id="LATE", execution_date=friday.isoformat())
            .tx("L-1", "3.00", creditor=B_MAIN)
            .build()
        )
    )
    assert late == {}, "after end of day nothing is booked on Friday"
    inst.clock.set(riga(monday, "09:00"))
    inst.run()  # the late payment executes at the start of Monday
    inst.clock.set(riga(monday, "18:30"))
    assert statements.run_due_eod(inst.env) == 10

    found = statements_of(inst, CLIENT_A, assert_valid)
    found |= statements_of(inst, CLIENT_B, assert_valid)
    days = [TODAY, dt.date(2026, 11, 26), friday, monday]
    assert len(found) == 10 * len(days)
    for iban in {iban for iban, _ in found}:
        chain = [found[(iban, d)] for d in days]
        assert [s.seq for s in chain] == [1, 2, 3, 4], iban
        for previous, current in itertools.pairwise(chain):
            assert current.opening == previous.closing, (iban, current.day)
        for s in chain:
            assert s.opening + s.net == s.closing, (iban, s.day)
            assert s.net == ledger_movement(inst, iban, s.day), (iban, s.day)
            assert s.closing == ledger_balance_through(inst, iban, s.day)
            assert s.summary_count == len(s.entries)
            assert all(e.booking_date == s.day for e in s.entries)
    b_monday = found[(B_MAIN, monday)]
    assert [e.details[0].end_to_end_id for e in b_monday.entries] == ["L-1"]
    assert found[(A_MAIN, friday)].net == -725
    assert found[(A_MAIN, TODAY)].closing == 100_000_00 - 1500


def test_a_day_without_movement_still_gets_a_statement(
    inst: Installation, assert_valid: Validate
) -> None:
    """With the default configuration every account gets a statement every business day,
    even without movement: zero entries, OPBD = CLBD = the previous day's closing."""
    close_day(inst, TODAY)
    thursday = dt.date(2026, 11, 26)
    results = close_day(inst, thursday)
    assert all(r.written for r in results) and len(results) == 10
    found = statements_of(inst, CLIENT_A, assert_valid) | statements_of(
        inst, CLIENT_B, assert_valid
    )
    for iban in (A_MAIN, A_BLOCKED, B_MAIN, A_USD):
        quiet = found[(iban, thursday)]
        assert quiet.entries == []
        assert quiet.summary_count == 0
        assert quiet.opening == quiet.closing == found[(iban, TODAY)].closing
    assert found[(A_MAIN, thursday)].closing == 100_000_00
    assert found[(A_BLOCKED, thursday)].closing == 0


class TomlFalse:
    """`write_config` writes non-strings with str(): this one as TOML's `false`."""

    def __str__(self) -> str:
        return "false"


def test_empty_statements_can_be_switched_off(tmp_path: Path) -> None:
    """An operator who sets `eod_empty_statements = false` gets statements only for
    accounts that moved that day: no empty files for dormant accounts."""
    inst = Installation.create(tmp_path / "gw", eod_empty_statements=TomlFalse())
    try:
        results = {r.iban: r for r in close_day(inst, TODAY)}
        assert results[A_MAIN].written and not results[A_BLOCKED].written
        assert {r.iban for r in read_all(inst)} == {i for i, r in results.items() if r.written}
        quiet = close_day(inst, dt.date(2026, 11, 26))
        assert quiet and not any(r.written for r in quiet)
    finally:
        inst.close()


def read_all(inst: Installation) -> list[CamtReport]:
    return [read_camt(p) for c in (CLIENT_A, CLIENT_B) for p in camt_files(inst, CAMT053, c)]


def test_statements_are_written_once_per_account_and_day(
    inst: Installation, assert_valid: Validate
) -> None:
    """End of day run twice (daemon restart, operator retry) gives the client one
    statement per account and day, never a second copy with a new sequence number."""
    first = close_day(inst, TODAY)
    again = close_day(inst, TODAY)
    assert sum(r.written for r in first) == 10
    assert not any(r.written for r in again)
    assert statements.run_due_eod(inst.env) == 0
    assert len(read_all(inst)) == 10
    statements_of(inst, CLIENT_A, assert_valid)


def test_every_statement_has_an_id_of_its_own(inst: Installation) -> None:
    """`Stmt/Id` identifies a statement unambiguously (ISO 20022), across the treasury's
    accounts: it was the day and the account's sequence number, which every account's
    first statement of a day shared ("20261125-1")."""
    close_day(inst, TODAY)
    close_day(inst, dt.date(2026, 11, 26))
    ids = {}
    for report in read_all(inst):
        stmt = etree.parse(report.path).getroot().find(".//{*}Stmt")
        assert stmt is not None
        ids[stmt.findtext("{*}Id")] = report
    assert len(ids) == 20
    for stmt_id, report in ids.items():
        assert stmt_id.startswith(f"{report.iban}-") and len(stmt_id) <= 35, stmt_id


def test_each_statement_goes_to_its_owner_only(inst: Installation) -> None:
    """A client finds statements of its own accounts in its out/, never another's."""
    inst.submit(Batch(msg_id="X").tx("X-1", "1.00", creditor=B_MAIN).build())
    close_day(inst, TODAY)
    own = {
        CLIENT_A: {a.iban for a in inst.settings.client(CLIENT_A).accounts},
        CLIENT_B: {a.iban for a in inst.settings.client(CLIENT_B).accounts},
    }
    for client, ibans in own.items():
        found = {read_camt(p).iban for p in camt_files(inst, CAMT053, client)}
        assert found == ibans, client


def test_an_independent_parser_reads_the_same_balances_and_entries(
    inst: Installation, assert_valid: Validate
) -> None:
    """A client's off-the-shelf camt.053 reader (pycamt) finds the same IBAN, opening and
    closing balances and the same entries (amount, direction, references, dates,
    counterparty, remittance) as the ledger holds."""
    inst.submit(
        Batch(msg_id="PY")
        .tx("P-1", "10.00", remittance="Rēķins 10")
        .tx("P-2", "20.00", remittance="Rēķins 20")
        .tx("P-3", "30.00", creditor=B_MAIN, creditor_name="Iestāde B", remittance="Līgums")
        .build()
    )
    close_day(inst, TODAY)
    ours = statements_of(inst, CLIENT_A, assert_valid)[(A_MAIN, TODAY)]
    parser = Camt053Parser.from_file(ours.path)
    assert parser.version == CAMT053
    (info,) = parser.get_statement_info()
    assert info["IBAN"] == A_MAIN and info["Currency"] == "EUR"
    assert Decimal(info["OpeningBalance"]) == Decimal(0)
    assert (
        Decimal(info["ClosingBalance"])
        == Decimal(ledger_balance_through(inst, A_MAIN, TODAY)) / 100
    )
    assert info["OpeningBalanceDate"] == info["ClosingBalanceDate"] == TODAY.isoformat()

    rows = parser.get_transactions()
    expected = [(e, d) for e in ours.entries for d in e.details]
    assert len(rows) == len(expected) == 4  # funding, two batched payments, one internal
    total = Decimal(0)
    seen_entries = set()
    for row, (entry, detail) in zip(rows, expected, strict=True):
        assert row["AccountIBAN"] == A_MAIN
        assert row["TransactionID"] == entry.acct_svcr_ref
        assert row["CreditDebitIndicator"] == ("CRDT" if entry.credit else "DBIT")
        assert row["Status"] == "BOOK"
        assert row["BookingDate"] == row["ValueDate"] == TODAY.isoformat()
        assert (
            row["BankTransactionCode"],
            row["TransactionFamilyCode"],
            row["TransactionSubFamilyCode"],
        ) == entry.code
        assert minor(row["Amount"], "EUR") == detail.amount_minor
        assert row.get("EndToEndId") == detail.end_to_end_id
        assert row.get("RemittanceInformation") == detail.remittance
        side = "Debtor" if entry.credit else "Creditor"
        assert row.get(f"{side}IBAN") == detail.counterparty_iban
        assert row.get(f"{side}Name") == detail.counterparty_name
        total += Decimal(row["Amount"]) * (1 if entry.credit else -1)
        seen_entries.add(entry.acct_svcr_ref)
    assert len(seen_entries) == 2  # funding, and the batch: one entry with three rows
    assert total == Decimal(info["ClosingBalance"]) - Decimal(info["OpeningBalance"])
    assert {r["EndToEndId"] for r in rows if "EndToEndId" in r} == {"P-1", "P-2", "P-3"}


def test_intraday_report_shows_todays_entries_and_interim_balance(
    inst: Installation, assert_valid: Validate
) -> None:
    """`report --iban` gives the client a camt.052 with the opening balance of the day,
    the entries booked so far and the interim balance (ITBD), valid against the XSD."""
    refs(
        inst.submit(Batch(msg_id="R").tx("R-1", "40.00").tx("R-2", "2.00", creditor=B_MAIN).build())
    )
    inst.clock.set(riga(TODAY, "12:00"))
    name = reports.intraday_report(inst.env, A_MAIN)
    path = inst.outbox(CLIENT_A) / name
    assert_valid(path, CAMT052)
    report = read_camt(path)
    assert report.message == CAMT052 and report.iban == A_MAIN
    assert report.balances["OPBD"][0] == 0
    assert report.balances["ITBD"][0] == 100_000_00 - 4200 == inst.balance(A_MAIN)
    assert report.balances["OPBD"][0] + report.net == report.balances["ITBD"][0]
    assert {d.end_to_end_id for d in report.details()} >= {"R-1", "R-2"}
    assert not camt_files(inst, CAMT052, CLIENT_B)


# -- ekase-gateway eod from the command line ------------------------------------------------

PAST_DAY = dt.date(2026, 11, 17)  # a Tuesday before the real date the tests run on
HOLIDAY = dt.date(2026, 11, 18)  # Proclamation Day of the Republic of Latvia
SATURDAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def past_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installation whose activity lies in the past (the CLI uses the real clock): its
    accounts appeared on PAST_DAY, when a payment was booked; no statement yet."""
    assert dt.datetime.now(RIGA) > riga(PAST_DAY, "18:30"), "these tests need a later clock"
    base = tmp_path_factory.mktemp("past-template")
    inst = Installation.create(base, now=riga(PAST_DAY, "10:00"))
    try:
        inst.submit(
            Batch(msg_id="PAST", execution_date=PAST_DAY.isoformat()).tx("P-1", "9.99").build()
        )
    finally:
        inst.close()
    return base


@pytest.fixture(scope="module")
def past(past_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The past installation, shared by the tests of this module that only add to it."""
    base = tmp_path_factory.mktemp("past")
    shutil.copytree(past_template, base, dirs_exist_ok=True)
    return base


@pytest.fixture
def past_copy(past_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the past installation, for a test that needs its own history."""
    shutil.copytree(past_template, tmp_path / "past")
    return tmp_path / "past"


def eod(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EKASE), "eod", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )


def all_out(base: Path) -> set[Path]:
    return set((base / "spool" / "clients").glob("*/out/*"))


def test_eod_on_a_weekend_or_holiday_writes_nothing_and_says_so(past: Path) -> None:
    """The operator running `eod --date` for a Saturday or for 18 November (a public
    holiday) is told there is nothing to write; exit 0, no file appears."""
    before = all_out(past)
    for day in (SATURDAY, HOLIDAY):
        assert not calendar.is_business_day(day)
        done = eod(past / "gateway.toml", "--date", day.isoformat())
        assert done.returncode == 0, done.stderr
        assert f"{day} is not a business day" in done.stdout
        assert "no statements written" in done.stdout
        assert all_out(past) == before


def test_eod_twice_for_a_day_writes_statements_once(past: Path, assert_valid: Validate) -> None:
    """`eod --date D` for a past business day writes every account's statement; run again
    (an operator's retry) it writes nothing new and says so."""
    config = past / "gateway.toml"
    before = all_out(past)
    first = eod(config, "--date", PAST_DAY.isoformat())
    assert first.returncode == 0, first.stderr
    assert "10 statement(s) written for 2026-11-17" in first.stdout
    new = sorted(p for p in all_out(past) - before if p.suffix == ".xml")
    assert len(new) == 10 and all(f"_{CAMT053}_" in p.name for p in new)
    for path in new:
        assert_valid(path, CAMT053)
        assert path.with_name(path.name + ".sig").exists(), "every statement is sealed"
    main = next(r for r in map(read_camt, new) if r.iban == A_MAIN)
    assert main.closing == 100_000_00 - 999 and main.opening == 0
    assert main.day == PAST_DAY

    middle = all_out(past)
    second = eod(config, "--date", PAST_DAY.isoformat())
    assert second.returncode == 0, second.stderr
    assert "0 statement(s) written for 2026-11-17" in second.stdout
    assert "already written" in second.stdout
    assert all_out(past) == middle


def test_eod_for_a_day_not_over_exits_2_with_one_line(past: Path) -> None:
    """Asking for statements of a day whose books are still open is a usage error:
    exit status 2 and one line saying why; nothing is written."""
    before = all_out(past)
    future = calendar.next_business_day(dt.datetime.now(RIGA).date())
    done = eod(past / "gateway.toml", "--date", future.isoformat())
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"--date {future} is in the future" in lines[0], lines[0]
    assert all_out(past) == before
    # A weekend ahead too: it said "not a business day" and exit 0, which a script reads
    # as the day done (a tester).
    saturday = future + dt.timedelta(days=(5 - future.weekday()) % 7)
    done = eod(past / "gateway.toml", "--date", saturday.isoformat())
    assert (done.returncode, done.stdout) == (2, ""), done.stdout
    assert f"--date {saturday} is in the future" in done.stderr, done.stderr
    # Without --date, on a business day's morning: it named the --date not given.
    from bench import workday

    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=RIGA)
    done = subprocess.run(
        [str(EKASE), "eod", "-c", str(past / "gateway.toml")], capture_output=True, text=True,
        timeout=60, env=workday.pinned(monday),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith(
        "today (2026-12-07): the day is not over; statements are written after 18:30 "
        "(or give --date)"
    ), done.stderr
    assert all_out(past) == before


# -- numbered in date order (SPEC §8; issue 14, item 3) ----------------------------------------

FIRST_DAY_LINE = "first business day"


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_eod_for_a_day_before_the_accounts_existed_exits_2(past_copy: Path) -> None:
    """`eod --date 2020-01-06` (or the Monday before the installation's first day) is
    refused with exit 2 and one line naming the accounts' first business day; no
    statement appears, and the first real day is still numbered 1."""
    config = past_copy / "gateway.toml"
    before = all_out(past_copy)
    # the Sunday before it as well: a day before the first business day is refused, weekend
    # or not (a weekend there said "not a business day", exit 0)
    for day in ("2020-01-06", "2026-11-16", "2026-11-15"):
        done = eod(config, "--date", day)
        assert done.returncode == 2, done.stdout + done.stderr
        line = one_line(done)
        assert day in line and FIRST_DAY_LINE in line and PAST_DAY.isoformat() in line, line
        assert all_out(past_copy) == before
    assert eod(config, "--date", PAST_DAY.isoformat()).returncode == 0
    written = [read_camt(p) for p in all_out(past_copy) - before if p.suffix == ".xml"]
    assert len(written) == 10 and {r.seq for r in written} == {1}


def test_eod_for_a_day_after_unstated_ones_exits_2_naming_the_first(
    past_copy: Path, assert_valid: Validate
) -> None:
    """`eod --date` for Friday 20 November while the accounts' first day (Tuesday 17th,
    with movement) has no statement: exit 2 naming the 17th, nothing written — stated
    first, Friday would open at a balance no statement closed with, and the 17th's entries
    would be in no statement, ever (it wrote Friday). After the 17th, Friday is refused for
    Thursday 19th (empty, and empty statements are on: SPEC §8, one statement per business
    day). Stated in order, each day once: Friday again is "already written", exit 0.
    Every statement's LglSeqNb equals its ElctrncSeqNb."""
    config = past_copy / "gateway.toml"
    friday, thursday = dt.date(2026, 11, 20), dt.date(2026, 11, 19)
    before = all_out(past_copy)
    for first, missing, said in ((None, PAST_DAY, "has movement and no statement"),
                                 (PAST_DAY, thursday, "has no statement")):  # fmt: skip
        if first is not None:
            assert eod(config, "--date", first.isoformat()).returncode == 0
        stated = all_out(past_copy)
        done = eod(config, "--date", friday.isoformat())
        assert done.returncode == 2, done.stdout + done.stderr
        line = one_line(done)
        assert f"{missing} {said}" in line and f"state {missing} first" in line, line
        assert all_out(past_copy) == stated
    assert eod(config, "--date", thursday.isoformat()).returncode == 0
    assert eod(config, "--date", friday.isoformat()).returncode == 0
    stated = all_out(past_copy)
    again = eod(config, "--date", friday.isoformat())
    assert again.returncode == 0, again.stderr
    assert "0 statement(s) written" in again.stdout and "already written" in again.stdout
    assert all_out(past_copy) == stated
    new = [p for p in stated - before if p.suffix == ".xml"]
    assert len(new) == 30
    for path in new:
        assert_valid(path, CAMT053)
        report = read_camt(path)
        assert report.legal_seq == report.seq
        assert (report.seq, report.day) in ((1, PAST_DAY), (2, thursday), (3, friday)), path.name


def seq_by_day(inst: Installation) -> dict[str, list[tuple[dt.date, int]]]:
    found: dict[str, list[tuple[dt.date, int]]] = {}
    for report in read_all(inst):
        assert report.legal_seq == report.seq, report.path.name
        found.setdefault(report.iban, []).append((report.day, report.seq))
    return {iban: sorted(days) for iban, days in found.items()}


def test_catch_up_never_states_a_day_before_a_later_stated_one(inst: Installation) -> None:
    """The daemon was down Wednesday and Thursday; on Friday evening an operator ran `eod`
    for Friday before the daemon's catch-up: refused for every account, Wednesday (with
    movement on some) and Thursday (empty) being unstated — stated after Friday's, their
    numbers would come after it, and the days would be in no statement. The catch-up then
    states them oldest first: on every account the numbers rise with the days, and no
    business day is left out."""
    friday = dt.date(2026, 11, 27)
    inst.clock.set(riga(friday, "18:45"))
    results = statements.write_statements(inst.env, friday)
    assert not any(r.written for r in results)
    assert {r.refusal for r in results} <= {
        statements.Refusal.UNSTATED_MOVEMENT, statements.Refusal.UNSTATED_DAY
    }
    assert statements.run_due_eod(inst.env) == 30
    days = [TODAY, dt.date(2026, 11, 26), friday]
    assert all(stated == list(zip(days, (1, 2, 3), strict=True))
               for stated in seq_by_day(inst).values())  # fmt: skip
    monday = dt.date(2026, 11, 30)
    inst.clock.set(riga(monday, "18:30"))
    assert statements.run_due_eod(inst.env) == 10
    assert all(days[-1] == (monday, 4) for days in seq_by_day(inst).values())


def test_a_long_absence_is_caught_up_day_by_day_over_passes(
    inst: Installation, assert_valid: Validate
) -> None:
    """Wednesday is stated; on Thursday a payment is booked, and the daemon is down until
    Monday 21 December, 18 business days later: more than one pass states. The passes
    state every missed day oldest first, ten days each, so every account's statements
    are numbered with the days and each opens where the previous one closed (a window of
    the last days only had skipped Thursday and then failed on its own check, on every
    pass)."""
    close_day(inst, TODAY)
    thursday = dt.date(2026, 11, 26)
    inst.clock.set(riga(thursday, "09:00"))
    assert refs(inst.submit(Batch(msg_id="THU").tx("T-1", "4.20").build()))
    back = dt.date(2026, 12, 21)
    missed = [d for d in map(thursday.__add__, map(dt.timedelta, range(26)))
              if calendar.is_business_day(d) and d <= back]  # fmt: skip
    assert len(missed) == 18
    inst.clock.set(riga(back, "18:30"))
    passes = [statements.run_due_eod(inst.env) for _ in range(3)]
    assert passes == [10 * statements.catch_up_business_days_max, 10 * 8, 0]
    found = statements_of(inst, CLIENT_A, assert_valid) | statements_of(
        inst, CLIENT_B, assert_valid
    )
    for iban in {iban for iban, _ in found}:
        chain = [found[(iban, d)] for d in [TODAY, *missed]]
        assert [s.seq for s in chain] == list(range(1, 20)), iban
        for previous, current in itertools.pairwise(chain):
            assert current.opening == previous.closing, (iban, current.day)
    assert found[(A_MAIN, thursday)].net == -420


def test_the_daemons_passes_go_on_catching_up_until_every_missed_day_is_stated(
    inst: Installation, assert_valid: Validate
) -> None:
    """The same absence seen by the daemon: its passes (every few seconds) state ten days
    each until none is missing. (The pass took the end of day as done once it had run for
    the hour, so the days past the first ten waited for the next evening: twenty days a
    day of catching up, and statements asked for meanwhile were refused.)"""
    close_day(inst, TODAY)
    back = dt.date(2026, 12, 21)
    inst.clock.set(riga(back, "18:30"))
    missed = [d for d in map(TODAY.__add__, map(dt.timedelta, range(1, 27)))
              if calendar.is_business_day(d) and d <= back]  # fmt: skip
    assert len(missed) > statements.catch_up_business_days_max
    worker = Worker(inst.env, threading.Event())
    for _ in range(3):
        worker.run_pass()
    found = statements_of(inst, CLIENT_A, assert_valid)
    assert {day for iban, day in found if iban == A_MAIN} == {TODAY, *missed}


def test_a_request_a_crash_left_in_work_finds_the_days_the_daemon_missed(
    inst: Installation,
) -> None:
    """A request for yesterday's camt.053 that a stopped daemon had already claimed (it
    lies in work/) was answered by the start-up's recovery, before any pass stated the
    days missed while the daemon was down: "no statement was issued" (a reviewer). The
    start-up states them first — in every worker, here worker 1 of 2."""
    from gateway.worker import Share
    from tests.unit import pull_samples

    close_day(inst, TODAY)
    day = TODAY
    for _ in range(3):
        day = calendar.next_business_day(day)
    yesterday = calendar.previous_business_day(day)
    inst.clock.set(riga(day, "09:00"))
    wanted = pull_samples.Wanted(
        iban=B_MAIN, from_date=yesterday.isoformat(), to_date=yesterday.isoformat()
    )
    request = pull_samples.to_bytes(pull_samples.camt060("05", (wanted,), msg_id="ASK-1"))
    path = inst.drop(request, "ask.xml", CLIENT_B)
    evening = riga(yesterday, "20:00")  # received, and claimed, the evening before
    receipt = inst.env.spool.receipts(CLIENT_B) / "ask.xml.json"
    receipt.write_text(json.dumps({"received_at": evening.isoformat()}))
    assert inst.env.spool.claim(CLIENT_B, path, evening) is not None  # then it stopped
    worker = Worker(inst.env, threading.Event(), Share(1, 2))
    assert worker.share.clients(inst.env.settings) == (inst.env.settings.clients[1],)
    assert inst.env.settings.clients[1].id == CLIENT_B
    assert worker.start_up() == 1
    names = [p.name for p in inst.outbox(CLIENT_B).iterdir()]
    assert not [n for n in names if "admi.002" in n], names
    copies = [p for p in camt_files(inst, CAMT053, CLIENT_B) if b"DUPL" in p.read_bytes()]
    assert len(copies) == 1, names


def test_end_of_day_faults_of_ours_are_the_passs_and_a_defect_is_logged_once(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database lost while the day is stated is a fault of ours like any other: it
    stops the pass (`pass.fault` with its kind, retried with back-off, shown by `status`)
    — it was logged as `eod.failed` with a traceback, no kind, on every pass (an outside
    tester, PostgreSQL connections terminated at 18:30). A defect of ours in it is logged
    with its traceback once, not again on every pass, while payments keep flowing."""
    from sqlalchemy.exc import OperationalError

    inst.clock.set(riga(TODAY, "18:30"))
    worker = Worker(inst.env, threading.Event())

    def lost(*_: object) -> int:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(statements, "run_due_eod", lost)
    with pytest.raises(OperationalError):
        worker.run_pass()

    def defect(*_: object) -> int:
        raise ValueError("a defect of ours")

    monkeypatch.setattr(statements, "run_due_eod", defect)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            worker.run_pass()
    assert [e["event"] for e in logs if e["event"] == "eod.failed"] == ["eod.failed"], logs


def test_a_day_after_an_unstated_day_with_movement_is_refused(inst: Installation) -> None:
    """Wednesday is stated, Thursday has a payment and no statement: Friday cannot be
    stated before Thursday (it would open at a balance no statement closed with). The
    accounts that moved on Thursday are refused, `eod --date` would say so in one line
    and write nothing; the others too, empty statements being on (SPEC §8: one statement
    per business day — Thursday's would never be written after Friday's); once Thursday
    is stated, Friday is."""
    close_day(inst, TODAY)
    thursday, friday = dt.date(2026, 11, 26), dt.date(2026, 11, 27)
    inst.clock.set(riga(thursday, "09:00"))
    assert refs(inst.submit(Batch(msg_id="THU").tx("T-1", "4.20").build()))
    inst.clock.set(riga(friday, "18:30"))
    line = statements.eod_refusal(inst.env, friday)
    assert line is not None and f"state {thursday} first" in line, line
    results = {r.iban: r for r in statements.write_statements(inst.env, friday)}
    assert results[A_MAIN].refusal is statements.Refusal.UNSTATED_MOVEMENT
    assert results[A_MAIN].bound == thursday and not results[A_MAIN].written
    assert results[A_BLOCKED].refusal is statements.Refusal.UNSTATED_DAY
    assert results[A_BLOCKED].bound == thursday and not results[A_BLOCKED].written
    assert all(r.written for r in statements.write_statements(inst.env, thursday))
    assert all(r.written for r in statements.write_statements(inst.env, friday))


def test_an_account_added_later_is_stated_from_the_day_it_appeared(
    inst: Installation, assert_valid: Validate
) -> None:
    """An account added to the configuration on Thursday (the gateway opens it in the
    ledger then) gets its first statement for Thursday, numbered 1, even though the
    daemon's catch-up looks back over Wednesday too; Wednesday is before its first
    business day and is not stated for it."""
    close_day(inst, TODAY)
    thursday = dt.date(2026, 11, 26)
    added = iban_lv("TREL", 9_100_000_000_008)
    text = inst.config.read_text(encoding="utf-8")
    marker = f'  iban = "{A_SMALL}"\n  currency = "EUR"\n'
    assert marker in text
    inst.config.write_text(
        text.replace(marker, marker + f'  [[client.account]]\n  iban = "{added}"\n'
                     '  currency = "EUR"\n'),
        encoding="utf-8",
    )
    inst.close()
    inst.clock.set(riga(thursday, "09:00"))
    reopened = Installation.copy_of(inst.base, inst.base.with_name("later"), now=inst.clock.now())
    try:
        wednesday_again = {r.iban: r for r in statements.write_statements(reopened.env, TODAY)}
        assert wednesday_again[added].refusal is statements.Refusal.BEFORE_FIRST_DAY
        assert not any(r.written for r in wednesday_again.values())
        reopened.clock.set(riga(thursday, "18:30"))
        assert statements.run_due_eod(reopened.env) == 11
        chains = seq_by_day(reopened)
        assert chains[added] == [(thursday, 1)]
        assert chains[A_MAIN] == [(TODAY, 1), (thursday, 2)]
        for path in camt_files(reopened, CAMT053):
            assert_valid(path, CAMT053)
    finally:
        reopened.close()


def test_a_clock_behind_the_last_statement_is_refused_before_anything_is_done(
    past_copy: Path,
) -> None:
    """A system clock set back (a bad NTP step, a mistaken `date`) below a day statements
    were issued for: `scan --once` booked that day's files on a day whose statement the
    client already holds (and judged its cut-offs on the wrong day). Every writer is
    refused in one line, exit 2, with the file left waiting; the right clock runs it."""
    from bench import workday

    config = past_copy / "gateway.toml"
    assert eod(config, "--date", PAST_DAY.isoformat()).returncode == 0
    waiting = past_copy / "spool/clients" / CLIENT_A / "in/late.xml"
    waiting.write_bytes(Batch(msg_id="LATE").tx("L-1", "1.00").build())
    # The day before, and the stated day itself before its end (its statements were
    # written after 18:30: a clock at 10:00 that day has been set back too).
    for moment in (riga(PAST_DAY - dt.timedelta(days=1), "10:00"), riga(PAST_DAY, "10:00")):
        for command in (["scan", "--once"], ["ledger", "fund", "--iban", A_MAIN, "--amount", "1"]):
            done = subprocess.run(
                [str(EKASE), *command, "-c", str(config)], capture_output=True, text=True,
                timeout=60, env=workday.pinned(moment),
            )  # fmt: skip
            assert done.returncode == 2, (done.stdout, done.stderr)
            [line] = done.stderr.splitlines()
            assert (
                f"the clock says {moment:%Y-%m-%d %H:%M}, but statements were issued for "
                f"{PAST_DAY} (after its 18:30 end of day)" in line
            ), line
            assert waiting.exists()
    done = subprocess.run(
        [str(EKASE), "scan", "--once", "-c", str(config)], capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert done.returncode == 0 and "processed 1 file" in done.stdout, done.stderr
    assert not waiting.exists()


def test_with_empty_statements_off_a_day_after_unstated_movement_is_refused(
    tmp_path: Path,
) -> None:
    """Empty statements off: `eod --date` for Friday, on which an account did not move,
    after its Thursday with movement and no statement, is refused naming Thursday (exit 2,
    as README says), not "nothing written (no movement)" with exit 0."""
    inst = Installation.create(tmp_path / "gw", eod_empty_statements=False)
    try:
        close_day(inst, TODAY)
        thursday, friday = dt.date(2026, 11, 26), dt.date(2026, 11, 27)
        inst.clock.set(riga(thursday, "09:00"))
        assert refs(inst.submit(Batch(msg_id="THU-OFF").tx("T-1", "4.20").build()))
        inst.clock.set(riga(friday, "18:30"))
        line = statements.eod_refusal(inst.env, friday)
        assert line is not None and f"{thursday} has movement and no statement" in line, line
    finally:
        inst.close()


def test_the_refusal_counts_the_accounts_of_the_day_it_names() -> None:
    """`not stated: D has movement and no statement (N account(s), e.g. …)`: N and the
    example are of day D; an account whose first unstated day is later is not counted
    (it said 2 accounts for a day one account moved on)."""
    day, first, second = dt.date(2026, 12, 9), dt.date(2026, 12, 7), dt.date(2026, 12, 8)
    moved = statements.Refusal.UNSTATED_MOVEMENT
    results = [
        statements.StatementResult("LV52", day, False, None, "", moved, second),
        statements.StatementResult("LV31", day, False, None, "", moved, first),
    ]
    line = statements.refusal_line(day, results)
    assert line == (
        f"not stated: {first} has movement and no statement (1 account(s), e.g. LV31); "
        f"state {first} first"
    ), line
