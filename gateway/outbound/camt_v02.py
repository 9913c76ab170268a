"""The parts camt.052/053/054.001.02 share: group header, account, balances, entries.

The three 2009-edition account reports use the same ISO types for everything below
their report element (GroupHeader42, CashAccount20, CashBalance3, TotalTransactions2,
ReportEntry2), so they are written once, here. Each message module only chooses the
root, the report element and the balances.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from gateway.inbound import budget
from gateway.inbound.parsed import PURPOSE_CODE, PURPOSE_PROPRIETARY, USTRD_SEPARATOR
from gateway.outbound import account_report, xmlwrite
from gateway.outbound.account_report import (
    AccountReport,
    BankTxCode,
    Entry,
    EntryDetail,
    Exchange,
    Totals,
)
from gateway.outbound.xmlwrite import Writer, id_chars_max
from ledger.currency import format_minor, stateable


class Balance(NamedTuple):
    code: str  # BalanceType12Code: OPBD, CLBD, ITBD
    minor: int  # signed: a negative balance is written as its absolute value with DBIT
    when: date | datetime


def group_header(w: Writer, report: AccountReport) -> None:
    """GrpHdr: a single-page message (MsgPgntn 1, last page)."""
    with w.element("GrpHdr"):
        w.leaf("MsgId", _id(report.msg_id))
        w.datetime("CreDtTm", report.created_at)
        with w.element("MsgPgntn"):
            w.leaf("PgNb", "1")
            w.leaf("LastPgInd", "true")


def account_section(
    w: Writer, report: AccountReport, tag: str, balances: Sequence[Balance], summary: Totals
) -> None:
    """Stmt, Rpt or Ntfctn: identification, account, balances, summary, entries."""
    with w.element(tag):
        w.leaf("Id", _id(report.report_id))
        w.leaf("ElctrncSeqNb", str(report.electronic_seq_nb))
        if report.legal_seq_nb is not None:
            w.leaf("LglSeqNb", str(report.legal_seq_nb))
        w.datetime("CreDtTm", report.created_at)
        with w.element("FrToDt"):
            w.datetime("FrDtTm", report.from_datetime)
            w.datetime("ToDtTm", report.to_datetime)
        _account(w, report)
        for balance in balances:
            _balance(w, balance, report.currency)
        _summary(w, summary, report.currency)
        for entry in account_report.checked(report, summary):
            _entry(w, entry)


def _id(text: str) -> str:
    value = xmlwrite.cut(text, id_chars_max)
    if value is None:
        raise ValueError("empty identification")
    return value


def _direction(credit: bool) -> str:
    return "CRDT" if credit else "DBIT"


def _account(w: Writer, report: AccountReport) -> None:
    with w.element("Acct"):
        with w.element("Id"):
            w.leaf("IBAN", report.iban)
        w.leaf("Ccy", report.currency)
        xmlwrite.party(w, "Ownr", report.owner_name)
        xmlwrite.agent(w, "Svcr", report.servicer_bic)


def _balance(w: Writer, balance: Balance, currency: str) -> None:
    with w.element("Bal"):
        with w.element("Tp"), w.element("CdOrPrtry"):
            w.leaf("Cd", balance.code)
        w.amount("Amt", abs(balance.minor), currency)
        w.leaf("CdtDbtInd", _direction(balance.minor >= 0))
        with w.element("Dt"):
            if isinstance(balance.when, datetime):
                w.datetime("DtTm", balance.when)
            else:
                w.date("Dt", balance.when)


def _summary(w: Writer, summary: Totals, currency: str) -> None:
    """TxsSummry: all entries (sum of absolute amounts, net with direction), then per side.
    Left out (it is optional) when the day's turnover has more digits than ISO's amounts:
    every balance and entry fits them, their sum over a day need not."""
    if not stateable(summary.credits_minor + summary.debits_minor):
        return
    with w.element("TxsSummry"):
        with w.element("TtlNtries"):
            w.leaf("NbOfNtries", str(summary.count))
            w.leaf("Sum", format_minor(summary.credits_minor + summary.debits_minor, currency))
            w.leaf("TtlNetNtryAmt", format_minor(abs(summary.net_minor), currency))
            w.leaf("CdtDbtInd", _direction(summary.net_minor >= 0))
        for tag, count, minor in (
            ("TtlCdtNtries", summary.credit_count, summary.credits_minor),
            ("TtlDbtNtries", summary.debit_count, summary.debits_minor),
        ):
            with w.element(tag):
                w.leaf("NbOfNtries", str(count))
                w.leaf("Sum", format_minor(minor, currency))


def _entry(w: Writer, entry: Entry) -> None:
    with w.element("Ntry"):
        w.text("NtryRef", entry.entry_ref, id_chars_max)
        w.amount("Amt", entry.amount_minor, entry.currency)
        w.leaf("CdtDbtInd", _direction(entry.credit))
        w.leaf("Sts", "BOOK")
        with w.element("BookgDt"):
            w.date("Dt", entry.booking_date)
        with w.element("ValDt"):
            w.date("Dt", entry.value_date)
        w.text("AcctSvcrRef", entry.acct_svcr_ref, id_chars_max)
        _bank_tx_code(w, entry.bank_tx_code)
        if entry.details:
            with w.element("NtryDtls"):
                if entry.batch_booked:
                    _batch(w, entry)
                for detail in entry.details:
                    _tx_details(w, detail, entry)


def _bank_tx_code(w: Writer, code: BankTxCode) -> None:
    with w.element("BkTxCd"), w.element("Domn"):
        w.leaf("Cd", code.domain)
        with w.element("Fmly"):
            w.leaf("Cd", code.family)
            w.leaf("SubFmlyCd", code.subfamily)


def _batch(w: Writer, entry: Entry) -> None:
    """Btch: the payment information the entry books as one amount."""
    first = next(iter(entry.details))
    with w.element("Btch"):
        w.text("MsgId", first.msg_id, id_chars_max)
        w.text("PmtInfId", first.pmt_inf_id, id_chars_max)
        w.leaf("NbOfTxs", str(len(entry.details)))
        w.amount("TtlAmt", entry.amount_minor, entry.currency)
        w.leaf("CdtDbtInd", _direction(entry.credit))


def _tx_details(w: Writer, detail: EntryDetail, entry: Entry) -> None:
    with w.element("TxDtls"):
        _references(w, detail)
        with w.element("AmtDtls"):
            if detail.exchange is None:
                for tag in ("InstdAmt", "TxAmt"):  # no currency exchange: both are the same
                    with w.element(tag):
                        w.amount("Amt", detail.amount_minor, entry.currency)
            else:
                _exchanged(w, detail.exchange, detail.amount_minor, entry.currency)
        if detail.bank_tx_code is not None:
            _bank_tx_code(w, detail.bank_tx_code)
        _counterparty(w, detail, entry.credit)
        _purpose(w, detail.purpose)
        _remittance(w, detail)
        if detail.budget_codes:  # SPEC §12: this side's codes
            side = budget.REVENUE_SIDE if entry.credit else budget.EXPENSE_SIDE
            w.text(
                "AddtlTxInf",
                budget.addtl_tx_inf(detail.budget_codes, side),
                budget.statement_chars_max,
            )


def _exchanged(w: Writer, exchange: Exchange, amount_minor: int, currency: str) -> None:
    """SPEC §13: the instructed amount with its exchange into the account's currency
    (`UnitCcy` = `SrcCcy`, `XchgRate` = target units per source unit), then the amount
    booked on the account."""
    source = exchange.instructed_currency
    with w.element("InstdAmt"):
        w.amount("Amt", exchange.instructed_minor, source)
        with w.element("CcyXchg"):
            w.leaf("SrcCcy", source)
            w.leaf("TrgtCcy", currency)
            w.leaf("UnitCcy", source)
            w.leaf("XchgRate", format(exchange.rate.normalize(), "f"))
    with w.element("TxAmt"):
        w.amount("Amt", amount_minor, currency)


def _remittance(w: Writer, detail: EntryDetail) -> None:
    """RmtInf as the payer sent it (SPEC §6): each Ustrd line, then the Strd blocks. The
    camt.05x.001.02 and pain.001.001.03 schemas share StructuredRemittanceInformation7,
    and the blocks were validated against it on arrival: they are written as they are,
    and so are the lines (Max140Text on both sides: blanks kept, nothing to clean)."""
    lines = [
        line[: xmlwrite.remittance_chars_max]
        for line in (detail.remittance or "").split(USTRD_SEPARATOR)
        if line
    ]
    if not lines and not detail.remittance_structured:
        return
    with w.element("RmtInf"):
        for line in lines:
            w.leaf("Ustrd", line)
        if detail.remittance_structured:
            w.raw(detail.remittance_structured)


def _references(w: Writer, detail: EntryDetail) -> None:
    refs = (
        ("MsgId", detail.msg_id),
        ("AcctSvcrRef", detail.acct_svcr_ref),
        ("PmtInfId", detail.pmt_inf_id),
        ("InstrId", detail.instr_id),
        ("EndToEndId", detail.end_to_end_id),
    )
    present = [(tag, text) for tag, value in refs if (text := xmlwrite.cut(value, id_chars_max))]
    if present:
        with w.element("Refs"):
            for tag, text in present:
                w.leaf(tag, text)


def _counterparty(w: Writer, detail: EntryDetail, credit: bool) -> None:
    """The other side: who paid us on a credit (Dbtr), whom we paid on a debit (Cdtr);
    the ultimate debtor and creditor as sent, in their places around it (TransactionParty2:
    Dbtr, DbtrAcct, UltmtDbtr, Cdtr, CdtrAcct, UltmtCdtr)."""
    side = "Dbtr" if credit else "Cdtr"
    name = xmlwrite.cut(detail.counterparty_name, xmlwrite.name_chars_max)
    iban = xmlwrite.valid_iban(detail.counterparty_iban)
    ultimate_debtor = xmlwrite.cut(detail.ultimate_debtor, xmlwrite.name_chars_max)
    ultimate_creditor = xmlwrite.cut(detail.ultimate_creditor, xmlwrite.name_chars_max)
    if name or iban or ultimate_debtor or ultimate_creditor:
        with w.element("RltdPties"):
            if not credit:
                xmlwrite.party(w, "UltmtDbtr", ultimate_debtor)
            xmlwrite.party(w, side, name)
            xmlwrite.iban_account(w, f"{side}Acct", iban)
            if credit:
                xmlwrite.party(w, "UltmtDbtr", ultimate_debtor)
            xmlwrite.party(w, "UltmtCdtr", ultimate_creditor)
    if xmlwrite.valid_bic(detail.counterparty_bic):
        with w.element("RltdAgts"):
            xmlwrite.agent(w, f"{side}Agt", detail.counterparty_bic)


def _purpose(w: Writer, purpose: str | None) -> None:
    """Purp as sent (Purpose2Choice: `Cd` or `Prtry`, as `ParsedTx.purpose` says)."""
    for prefix, tag in ((PURPOSE_CODE, "Cd"), (PURPOSE_PROPRIETARY, "Prtry")):
        if purpose and purpose.startswith(prefix) and (text := purpose[len(prefix) :].strip()):
            with w.element("Purp"):
                w.leaf(tag, text)
