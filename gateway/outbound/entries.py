"""The entries of an account's reports, from the ledger and the gateway's payment rows.

Each posting on the account is one entry; what a client needs to reconcile it (its
MsgId, PmtInfId, EndToEndId, counterparty, remittance as sent) comes from the payments
the posting carries, found by the entry's reference. A batch-booked payment
information is one entry with one transaction detail per payment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from gateway import db, fx
from gateway.inbound.identifiers import iban_spec
from gateway.outbound.account_report import (
    FUNDING,
    RECEIVED_INTERNAL,
    SENT_CROSS_BORDER,
    SENT_INTERNAL,
    SENT_MIXED,
    SENT_SEPA,
    BankTxCode,
    Entry,
    EntryDetail,
    Exchange,
    Totals,
)
from gateway.references import reference_file_id, reference_seq
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers

TREASURY_NAME = "Valsts kase"


def _sepa(iban: str | None) -> bool:
    spec = iban_spec(iban[:2]) if iban else None
    return bool(spec is not None and spec.in_sepa_zone)


def _sent_code(row: Any) -> BankTxCode:
    if row.kind == "internal":
        return SENT_INTERNAL
    return SENT_SEPA if row.currency == "EUR" and _sepa(row.creditor_iban) else SENT_CROSS_BORDER


def _detail(row: Any, credit: bool, booked_currency: str) -> EntryDetail:
    """A payment's TxDtls; a converted one's amount and rate are `_Rates`' to fill in."""
    exchange = None
    if row.currency != booked_currency:  # converted (SPEC §13)
        exchange = Exchange(row.amount_minor, row.currency, Decimal(0))
    return EntryDetail(
        amount_minor=row.amount_minor,
        msg_id=row.msg_id,
        pmt_inf_id=row.pmt_inf_id,
        end_to_end_id=row.end_to_end_id,
        instr_id=row.instr_id,
        acct_svcr_ref=row.acct_svcr_ref,
        counterparty_name=row.debtor_name if credit else row.creditor_name,
        counterparty_iban=row.debtor_iban if credit else row.creditor_iban,
        counterparty_bic=None if credit else row.creditor_bic,
        remittance=row.remittance,
        remittance_structured=row.remittance_structured,
        bank_tx_code=RECEIVED_INTERNAL if credit else _sent_code(row),
        budget_codes=row.budget_codes,
        exchange=exchange,
    )


def _payments_by_transfer(conn: Connection, references: Sequence[str]) -> dict[str, list[Any]]:
    """The booked payments each transfer carries, found file by file: a payment's
    transfer reference names its file (`references.reference_file_id`), and a payment's
    own reference its position too, so those are read by (file, position) — the index
    every file's payments have — 500 at a time; batches' and runs' references (few) by
    reference. (Read all by reference, a file's rows were read once per 500.)"""
    by_file: dict[int, list[str]] = defaultdict(list)
    for reference in references:
        file_id = reference_file_id(reference)
        if file_id is not None:
            by_file[file_id].append(reference)
    found: dict[str, list[Any]] = defaultdict(list)
    p = db.payments.c
    for file_id, refs in sorted(by_file.items()):
        wanted = set(refs)
        positions = {r: reference_seq(r) for r in refs}
        seqs = sorted({seq for seq in positions.values() if seq is not None})
        others = [r for r, seq in positions.items() if seq is None]
        chunks = [p.seq.in_(seqs[at : at + 500]) for at in range(0, len(seqs), 500)]
        chunks += [p.transfer_ref.in_(others[at : at + 500]) for at in range(0, len(others), 500)]
        for chunk in chunks:
            rows = conn.execute(
                select(db.payments)
                .where(p.file_id == file_id, chunk, p.status == "ACSC")
                .order_by(p.seq)
            )
            for row in rows:
                if row.transfer_ref in wanted:
                    found[row.transfer_ref].append(row)
    return found


def _funding_counterparty(conn: Connection, transfer_ids: Sequence[int]) -> dict[int, str]:
    """The funding account each funding transfer came from."""
    p = t_postings.c
    found: dict[int, str] = {}
    for start in range(0, len(transfer_ids), 500):
        rows = conn.execute(
            select(p.transfer_id, t_accounts.c.iban)
            .select_from(t_postings.join(t_accounts, t_accounts.c.id == p.account_id))
            .where(p.transfer_id.in_(transfer_ids[start : start + 500]), p.amount_minor < 0)
        )
        found.update({tid: iban for tid, iban in rows})
    return found


def entries(
    conn: Connection,
    account_id: int,
    *,
    day: dt.date | None = None,
    references: Sequence[str] | None = None,
) -> list[Entry]:
    """The account's entries — its postings — booked on `day`, or belonging to the given
    transfers, all at once (`Entries`, read whole)."""
    return list(Entries(conn, account_id, day=day, references=references))


class Entries:
    """The account's entries — its postings — booked on `day`, or belonging to the given
    transfers, read from the database a page of postings at a time each time they are
    iterated, so that a busy account's day never lies in memory at once. A posting's
    details are the payments its transfer carries on this account's side: all of them on
    the debtor's one debit, those to this account on a creditor's credit (a batch credits
    each creditor account once)."""

    page_postings = 2000

    def __init__(
        self,
        conn: Connection,
        account_id: int,
        *,
        day: dt.date | None = None,
        references: Sequence[str] | None = None,
    ) -> None:
        self.conn, self.account_id = conn, account_id
        self.condition = [t_postings.c.account_id == account_id]
        if day is not None:
            self.condition.append(t_postings.c.booking_date == day)
        if references is not None:
            self.condition.append(t_transfers.c.reference.in_(list(references)))

    def __iter__(self) -> Iterator[Entry]:
        conn = self.conn
        account_iban = conn.execute(
            select(t_accounts.c.iban).where(t_accounts.c.id == self.account_id)
        ).scalar_one()
        rates = _Rates(conn)
        after = 0  # the last posting read: pages follow the postings' order
        while page := self._page(after):
            after = page[-1].id
            details = _payments_by_transfer(
                conn, [p.reference for p in page if p.kind != "funding"]
            )
            funders = _funding_counterparty(
                conn, [p.transfer_id for p in page if p.kind == "funding"]
            )
            for posting in page:
                yield rates.exchanged(_entry(posting, details, funders, account_iban))

    def _page(self, after: int) -> list[Any]:
        return list(
            self.conn.execute(
                select(
                    t_postings.c.id,
                    t_postings.c.transfer_id,
                    t_postings.c.amount_minor,
                    t_postings.c.currency,
                    t_postings.c.booking_date,
                    func.coalesce(t_postings.c.reference, t_transfers.c.reference).label(
                        "reference"
                    ),
                    t_transfers.c.kind,
                    t_transfers.c.value_date,
                )
                .select_from(
                    t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id)
                )
                .where(and_(*self.condition, t_postings.c.id > after))
                .order_by(t_postings.c.id)
                .limit(self.page_postings)
            )
        )

    def totals(self) -> Totals:
        """How many entries there are, credits and debits, counted by the database (a
        report shows them before its entries, which it then reads once: the writer checks
        the entries against them as it goes, `account_report.checked`)."""
        amount = t_postings.c.amount_minor
        credit = amount > 0
        row = self.conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((credit, 1), else_=0)), 0),
                func.coalesce(func.sum(case((credit, amount), else_=0)), 0),
                func.coalesce(func.sum(case((credit, 0), else_=-amount)), 0),
            )
            .select_from(
                t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id)
            )
            .where(and_(*self.condition))
        ).one()
        count, credits, credited, debited = map(int, row)
        return Totals(count, credits, credited, count - credits, debited)


class _Rates:
    """The exchange of converted payments (SPEC §13), worked out again from the rates
    valid on their booking day: those never change once used, so the rate shown is the
    one the payment was converted at."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.days: dict[dt.date, fx.DayRates] = {}

    def exchanged(self, entry: Entry) -> Entry:
        """`entry` with the exchange of each converted payment it carries (on its own, or
        in a batch with others) and the amount booked for it in the entry's currency."""
        if all(d.exchange is None for d in entry.details):
            return entry
        rates = self.days.get(entry.booking_date)
        if rates is None:
            from gateway.rates import store

            rates = self.days[entry.booking_date] = store.rates_for_day(
                self.conn, entry.booking_date
            )
        details = tuple(self._converted(d, entry, rates) for d in entry.details)
        booked = sum(d.amount_minor for d in details)
        assert booked == entry.amount_minor, (entry.acct_svcr_ref, booked, entry.amount_minor)
        return replace(entry, details=details)

    @staticmethod
    def _converted(detail: EntryDetail, entry: Entry, rates: fx.DayRates) -> EntryDetail:
        exchange = detail.exchange
        if exchange is None:
            return detail
        found = fx.convert(
            exchange.instructed_minor, exchange.instructed_currency, entry.currency, rates
        )
        assert isinstance(found, fx.Conversion), (detail.acct_svcr_ref, found)
        return replace(
            detail, amount_minor=found.amount_minor, exchange=replace(exchange, rate=found.rate)
        )


def _entry(
    posting: Any, details: dict[str, list[Any]], funders: dict[int, str], account_iban: str
) -> Entry:
    credit = posting.amount_minor > 0
    if posting.kind == "funding":
        code = FUNDING
        entry_details: tuple[EntryDetail, ...] = (
            EntryDetail(
                amount_minor=abs(posting.amount_minor),
                acct_svcr_ref=posting.reference,
                counterparty_name=TREASURY_NAME,
                counterparty_iban=funders.get(posting.transfer_id),
                remittance="Treasury funding",
            ),
        )
    else:
        rows = details.get(posting.reference, [])
        mine = [r for r in rows if (r.creditor_iban if credit else r.debtor_iban) == account_iban]
        entry_details = tuple(_detail(r, credit, posting.currency) for r in mine)
        codes = {d.bank_tx_code for d in entry_details if d.bank_tx_code is not None}
        # A batch of one kind of payment has its code; of several, each TxDtls has its own.
        code = next(iter(codes)) if len(codes) == 1 else SENT_MIXED
    return Entry(
        entry_ref=str(posting.id),
        amount_minor=abs(posting.amount_minor),
        currency=posting.currency,
        credit=credit,
        booking_date=posting.booking_date,
        value_date=posting.value_date,
        acct_svcr_ref=posting.reference,
        bank_tx_code=code,
        details=entry_details,
        batch_booked=len(entry_details) > 1,
    )


def balance_before(conn: Connection, account_id: int, day: dt.date) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(t_postings.c.amount_minor), 0)).where(
                t_postings.c.account_id == account_id, t_postings.c.booking_date < day
            )
        ).scalar_one()
    )
