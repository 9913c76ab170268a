"""What camt.052, camt.053 and camt.054 report: an account, its balances, its booked entries.

One model for the three account reports; each message module decides which
balances it shows (camt.053 OPBD/CLBD, camt.052 OPBD/ITBD, camt.054 none).

A batch-booked payment information is ONE entry for its total, with one detail per
transaction (`batch_booked=True`, written as NtryDtls/Btch plus one TxDtls each);
otherwise every transaction is an entry of its own with at most one detail.

`check` is the pair assertion of the ledger's postings at the writing edge: a report
whose entries do not add up, or whose opening plus credits minus debits is not its
closing, is never written. It raises `ReportInvariantError`, a fault that stops the
process (STYLE: a violated invariant stops; the idempotent pipeline resumes).

Bank transaction codes (ISO External Bank Transaction Code list, Domain/Family/
SubFamily) are the named constants below. For the treasury's own funding credits
(budget allocations put on an account by the treasury itself) we use PMNT/RCDT/BOOK,
"received credit transfer / internal book transfer": it is a book entry made by the
account servicer, not a payment through a scheme (so not DMCT or ESCT), and it stays
in the payments domain where clients' reconciliation rules look for incoming money.
ACMT/MCOP ("miscellaneous credit operations") was the alternative; it reads as an
account-management adjustment, which a funding credit is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

TREASURY_BIC = "TRELLV22"


class ReportInvariantError(AssertionError):
    """An account report whose numbers do not add up: a fault, never written."""


@dataclass(frozen=True, slots=True)
class BankTxCode:
    domain: str
    family: str
    subfamily: str


SENT_INTERNAL = BankTxCode("PMNT", "ICDT", "DMCT")  # transfer to another treasury account
SENT_SEPA = BankTxCode("PMNT", "ICDT", "ESCT")  # SEPA credit transfer sent
SENT_CROSS_BORDER = BankTxCode("PMNT", "ICDT", "XBCT")  # cross-border credit transfer sent
SENT_MIXED = BankTxCode("PMNT", "ICDT", "OTHR")  # a batch of several kinds (each TxDtls says)
RECEIVED_INTERNAL = BankTxCode("PMNT", "RCDT", "DMCT")  # credit from another treasury account
FUNDING = BankTxCode("PMNT", "RCDT", "BOOK")  # treasury's own funding credit (see docstring)


@dataclass(frozen=True, slots=True)
class Exchange:
    """A converted payment's exchange (SPEC §13): what was instructed, and the rate:
    units of the entry's currency per unit of the instructed one (camt `XchgRate`)."""

    instructed_minor: int
    instructed_currency: str
    rate: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryDetail:
    """One transaction behind an entry (TxDtls). The counterparty is the other side."""

    amount_minor: int
    msg_id: str | None = None
    pmt_inf_id: str | None = None
    end_to_end_id: str | None = None
    instr_id: str | None = None
    acct_svcr_ref: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    remittance: str | None = None  # Ustrd lines as sent (`parsed.USTRD_SEPARATOR` between)
    remittance_structured: str | None = None  # Strd blocks as sent, XML
    bank_tx_code: BankTxCode | None = None
    budget_codes: str | None = None  # SPEC §12: the payment's code lines (`budget.lines`)
    exchange: Exchange | None = None  # a converted payment: `amount_minor` is the entry's
    # SPEC §8: as sent (`ParsedTx.ultimate_debtor` …): the same on both sides' statements
    ultimate_debtor: str | None = None
    ultimate_creditor: str | None = None
    purpose: str | None = None


class Details(Protocol):
    """An entry's transactions: a tuple, or a batch's read a page at a time each time they
    are iterated (`entries._Carried`): counted with `len`, gone through in order."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[EntryDetail]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One booked entry (Ntry). The amount is positive; `credit` gives the direction."""

    entry_ref: str
    amount_minor: int
    currency: str
    credit: bool
    booking_date: date
    value_date: date
    acct_svcr_ref: str
    bank_tx_code: BankTxCode
    details: Details = ()
    batch_booked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    """One account over one period. Balances are signed minor units (negative: DBIT).

    `entries` is iterated twice (once to check and total, once to write); it may read
    them afresh each time (`entries.Entries`, a page at a time). `opening_minor` and
    `closing_minor` are required by camt.052 (closing is the interim balance) and
    camt.053; camt.054 ignores them,
    and checks them only when both are given. Balance dates are the dates of
    `from_datetime`/`to_datetime` in their own time zone: pass Europe/Riga times.
    """

    msg_id: str
    report_id: str
    created_at: datetime
    electronic_seq_nb: int
    legal_seq_nb: int | None = None  # camt.053: the statement's number, in date order
    iban: str
    currency: str
    owner_name: str
    servicer_bic: str = TREASURY_BIC
    from_datetime: datetime
    to_datetime: datetime
    opening_minor: int | None = None
    closing_minor: int | None = None
    entries: Iterable[Entry] = ()
    # The entries' totals when the database counted them beforehand (`entries.Entries`):
    # the entries are then read once, checked as they are written (`checked`).
    totals: Totals | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    count: int
    credit_count: int
    credits_minor: int
    debit_count: int
    debits_minor: int

    @property
    def net_minor(self) -> int:
        return self.credits_minor - self.debits_minor


class Tally:
    """Entries added up as they pass: number, credits, debits."""

    def __init__(self) -> None:
        self.credit_count = self.debit_count = self.credits = self.debits = 0

    def add(self, entry: Entry) -> None:
        if entry.credit:
            self.credit_count += 1
            self.credits += entry.amount_minor
        else:
            self.debit_count += 1
            self.debits += entry.amount_minor

    def totals(self) -> Totals:
        count = self.credit_count + self.debit_count
        return Totals(count, self.credit_count, self.credits, self.debit_count, self.debits)


def totals(entries: Iterable[Entry]) -> Totals:
    """Number of entries, sum of credits, sum of debits (net: credits − debits)."""
    tally = Tally()
    for entry in entries:
        tally.add(entry)
    return tally.totals()


def check(report: AccountReport) -> Totals:
    """Refuse a report that does not add up; return its totals for the summary. Totals
    counted beforehand (`AccountReport.totals`) are checked here against the balances and
    as the entries are written against the entries (`checked`)."""
    result = report.totals
    if result is None:
        for entry in report.entries:
            check_entry(entry, report.currency)  # its transactions as they are written
        result = totals(report.entries)
    opening, closing = report.opening_minor, report.closing_minor
    if opening is not None and closing is not None and opening + result.net_minor != closing:
        raise ReportInvariantError(
            f"{report.iban} {report.report_id}: opening {opening} + credits "
            f"{result.credits_minor} - debits {result.debits_minor} != closing {closing}"
        )
    return result


def checked(report: AccountReport, summary: Totals) -> Iterator[Entry]:
    """The report's entries as they are written, each with its transactions checked as
    they pass. With totals counted beforehand, each entry is checked as it passes and, at
    the end, all of them against `summary`: a report that does not add up is refused then,
    before it is delivered (its writing fails)."""
    if report.totals is None:  # `check` went through the entries already
        yield from (check_entry(entry, report.currency) for entry in report.entries)
        return
    tally = Tally()
    for entry in report.entries:
        entry = check_entry(entry, report.currency)
        tally.add(entry)
        yield entry
    if tally.totals() != summary:
        raise ReportInvariantError(
            f"{report.iban} {report.report_id}: the entries add up to {tally.totals()}, "
            f"not {summary}"
        )


def balances(report: AccountReport) -> tuple[int, int]:
    """Opening and closing balance of a report that must show them (camt.052/053)."""
    if report.opening_minor is None or report.closing_minor is None:
        raise ReportInvariantError(f"{report.report_id}: opening and closing balance required")
    return report.opening_minor, report.closing_minor


def check_entry(entry: Entry, currency: str) -> Entry:
    """`entry` checked, its transactions as they are gone through (`_CheckedDetails`)."""
    where = f"entry {entry.entry_ref}"
    if entry.amount_minor <= 0:
        raise ReportInvariantError(f"{where}: amount {entry.amount_minor} is not positive")
    if entry.currency != currency:
        raise ReportInvariantError(f"{where}: currency {entry.currency} on a {currency} account")
    if not entry.batch_booked and len(entry.details) > 1:
        raise ReportInvariantError(f"{where}: several transactions but not batch-booked")
    if entry.batch_booked and not entry.details:
        raise ReportInvariantError(f"{where}: batch-booked without transactions")
    return replace(entry, details=_CheckedDetails(entry, where)) if entry.details else entry


class _CheckedDetails:
    """An entry's transactions checked as they pass — a batch's are read from the database
    as they are written, once: each amount positive and, once all have passed, as many as
    counted and their sum the entry's amount (a report that does not add up fails while
    it is written)."""

    def __init__(self, entry: Entry, where: str) -> None:
        self.details, self.amount_minor, self.where = entry.details, entry.amount_minor, where

    def __len__(self) -> int:
        return len(self.details)

    def __iter__(self) -> Iterator[EntryDetail]:
        count = detailed = 0
        for detail in self.details:
            if detail.amount_minor <= 0:
                raise ReportInvariantError(f"{self.where}: a transaction amount is not positive")
            count += 1
            detailed += detail.amount_minor
            yield detail
        if detailed != self.amount_minor or count != len(self.details):
            raise ReportInvariantError(
                f"{self.where}: {count} details of sum {detailed}, not "
                f"{len(self.details)} of {self.amount_minor}"
            )
