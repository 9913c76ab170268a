"""The entries of an account's reports, from the ledger and the gateway's payment rows.

Each posting on the account is one entry; what a client needs to reconcile it (its
MsgId, PmtInfId, EndToEndId, counterparty, remittance as sent) comes from the payments
the posting carries, found by the entry's reference. A batch-booked payment
information is one entry with one transaction detail per payment.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, NamedTuple

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
from ledger import sums
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers

TREASURY_NAME = "Valsts kase"


def _sent_code(kind: str, currency: str | None, country: str | None) -> BankTxCode:
    """A sent payment's code, from its kind, currency and the creditor IBAN's country."""
    if kind == "internal":
        return SENT_INTERNAL
    spec = iban_spec(country) if country else None
    sepa = spec is not None and spec.in_sepa_zone
    return SENT_SEPA if currency == "EUR" and sepa else SENT_CROSS_BORDER


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
        bank_tx_code=(
            RECEIVED_INTERNAL
            if credit
            else _sent_code(row.kind, row.currency, row.creditor_iban and row.creditor_iban[:2])
        ),
        budget_codes=row.budget_codes,
        exchange=exchange,
        ultimate_debtor=row.ultimate_debtor,
        ultimate_creditor=row.ultimate_creditor,
        purpose=row.purpose,
    )


class _Span(NamedTuple):
    """Where in its file the payments a transfer carries lie (a payment information's
    are one run of positions)."""

    file_id: int
    first: int
    last: int


def _by_file(references: Sequence[str]) -> dict[int, list[str]]:
    by_file: dict[int, list[str]] = defaultdict(list)
    for reference in references:
        file_id = reference_file_id(reference)
        if file_id is not None:
            by_file[file_id].append(reference)
    return by_file


def _own_payments(conn: Connection, references: Sequence[str]) -> dict[str, Any]:
    """The payments booked on their own among `references` (a payment's own reference
    names its file and position: `references.reference_seq`), read by (file, position) —
    the index every file's payments have — 500 at a time."""
    found: dict[str, Any] = {}
    p = db.payments.c
    for file_id, refs in sorted(_by_file(references).items()):
        seqs = sorted(seq for r in refs if (seq := reference_seq(r)) is not None)
        for at in range(0, len(seqs), 500):
            rows = conn.execute(
                select(db.payments).where(
                    p.file_id == file_id, p.seq.in_(seqs[at : at + 500]), p.status == "ACSC"
                )
            )
            found.update((row.transfer_ref, row) for row in rows)
    return found


def _spans(conn: Connection, references: Sequence[str]) -> dict[str, _Span]:
    """Where the payments of the transfers that carry several (a batch's, a run's) lie,
    counted by the database file by file, 500 references at a time: the payments
    themselves are read with their entry, a page at a time (`_Carried`)."""
    found: dict[str, _Span] = {}
    p = db.payments.c
    for file_id, refs in sorted(_by_file(references).items()):
        for at in range(0, len(refs), 500):
            rows = conn.execute(
                select(p.transfer_ref, func.min(p.seq), func.max(p.seq))
                .where(p.file_id == file_id, p.transfer_ref.in_(refs[at : at + 500]))
                .group_by(p.transfer_ref)
            )
            found.update((ref, _Span(file_id, first, last)) for ref, first, last in rows)
    return found


page_payments = 2000


class _Carried:
    """The payments a transfer of several carries on one account's side — all of a
    batch's on its debtor's one debit, those to the account on a creditor's credit —
    read a page at a time each time they are iterated: a batch-booked payroll of
    1,000,000 payments is one entry, never in memory at once. Counted once, by the
    database; converted payments' amounts and rates filled in as they are read."""

    def __init__(
        self, conn: Connection, posting: Any, span: _Span, account_iban: str, rates: _Rates
    ) -> None:
        p = db.payments.c
        self.conn, self.posting, self.span, self.rates = conn, posting, span, rates
        self.credit = posting.amount_minor > 0
        self.condition = [
            p.file_id == span.file_id, p.seq.between(span.first, span.last),
            p.transfer_ref == posting.reference, p.status == "ACSC",
        ]  # fmt: skip
        if self.credit:  # a debit is the one of the debtor of all (a payment information)
            self.condition.append(p.creditor_iban == account_iban)
        self._counted: Counter[tuple[str, str | None, str | None]] | None = None

    def __len__(self) -> int:
        return sum(self._kinds().values())

    def __iter__(self) -> Iterator[EntryDetail]:
        currency, day, after = self.posting.currency, self.posting.booking_date, self.span.first - 1
        while page := self._page(after):
            after = page[-1].seq
            for row in page:
                yield self.rates.converted(_detail(row, self.credit, currency), currency, day)

    def _page(self, after: int) -> list[Any]:
        p = db.payments.c
        return list(
            self.conn.execute(
                select(db.payments)
                .where(*self.condition, p.seq > after)
                .order_by(p.seq)
                .limit(page_payments)
            )
        )

    def codes(self) -> set[BankTxCode]:
        """The bank transaction codes of the payments, from what tells them apart."""
        if self.credit:
            return {RECEIVED_INTERNAL} if len(self) else set()
        return {_sent_code(*kind) for kind in self._kinds()}

    def _kinds(self) -> Counter[tuple[str, str | None, str | None]]:
        """How many payments of each kind, currency and creditor country: counted by the
        database once, in one pass over the span."""
        if self._counted is None:
            p = db.payments.c
            kind = (p.kind, p.currency, func.substr(p.creditor_iban, 1, 2))
            rows = self.conn.execute(
                select(*kind, func.count()).where(*self.condition).group_by(*kind)
            )
            self._counted = Counter({(k, ccy, country): n for k, ccy, country, n in rows})
        return self._counted


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
    transfers, all at once (`Entries`, read whole); a batch's transactions are read as
    they are gone through (`_Carried`), while `conn` is open."""
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
            paid = [p.reference for p in page if p.kind != "funding"]
            carried = _Payments(
                _own_payments(conn, [r for r in paid if reference_seq(r) is not None]),
                _spans(conn, [r for r in paid if reference_seq(r) is None]),
                _funding_counterparty(conn, [p.transfer_id for p in page if p.kind == "funding"]),
            )
            for posting in page:
                yield _entry(conn, posting, carried, account_iban, rates)

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
        """How many entries there are, credits and debits, counted by the database: shown
        before the entries, which are read once, checked as they go (`checked`)."""
        amount = t_postings.c.amount_minor
        credit = amount > 0
        row = self.conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((credit, 1), else_=0)), 0),
                *sums.split_total(case((credit, amount), else_=0)),
                *sums.split_total(case((credit, 0), else_=-amount)),
            )
            .select_from(
                t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id)
            )
            .where(and_(*self.condition))
        ).one()
        count, credits, *parts = row
        credited, debited = sums.exact_total(*parts[:2]), sums.exact_total(*parts[2:])
        return Totals(int(count), int(credits), credited, int(count) - int(credits), debited)


class _Rates:
    """The exchange of converted payments (SPEC §13), worked out again from the rates
    valid on their booking day: those never change once used, so the rate shown is the
    one the payment was converted at."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.days: dict[dt.date, fx.DayRates] = {}

    def converted(self, detail: EntryDetail, currency: str, day: dt.date) -> EntryDetail:
        """`detail` with its exchange and the amount booked for it in `currency` on `day`
        if it was converted (on its own, or in a batch with others)."""
        exchange = detail.exchange
        if exchange is None:
            return detail
        rates = self.days.get(day)
        if rates is None:
            from gateway.rates import store

            rates = self.days[day] = store.rates_for_day(self.conn, day)
        found = fx.convert(exchange.instructed_minor, exchange.instructed_currency, currency, rates)
        assert isinstance(found, fx.Conversion), (detail.acct_svcr_ref, found)
        return replace(
            detail, amount_minor=found.amount_minor, exchange=replace(exchange, rate=found.rate)
        )


class _Payments(NamedTuple):
    """What a page of postings carries: payments booked on their own (by reference), where
    those of the transfers of several lie, and where funding came from (by transfer)."""

    own: dict[str, Any]
    spans: dict[str, _Span]
    funders: dict[int, str]


def _entry(
    conn: Connection, posting: Any, carried: _Payments, account_iban: str, rates: _Rates
) -> Entry:
    credit = posting.amount_minor > 0
    details: tuple[EntryDetail, ...] | _Carried = ()
    if posting.kind == "funding":
        code = FUNDING
        details = (
            EntryDetail(
                amount_minor=abs(posting.amount_minor),
                acct_svcr_ref=posting.reference,
                counterparty_name=TREASURY_NAME,
                counterparty_iban=carried.funders.get(posting.transfer_id),
                remittance="Treasury funding",
            ),
        )
    elif (span := carried.spans.get(posting.reference)) is not None:
        details = _Carried(conn, posting, span, account_iban, rates)
        codes = details.codes()
        # A batch of one kind of payment has its code; of several, each TxDtls has its own.
        code = next(iter(codes)) if len(codes) == 1 else SENT_MIXED
    else:
        code = SENT_MIXED
        row = carried.own.get(posting.reference)
        if row is not None and (row.creditor_iban if credit else row.debtor_iban) == account_iban:
            detail = _detail(row, credit, posting.currency)
            details = (rates.converted(detail, posting.currency, posting.booking_date),)
            code = detail.bank_tx_code or code
    return Entry(
        entry_ref=str(posting.id),
        amount_minor=abs(posting.amount_minor),
        currency=posting.currency,
        credit=credit,
        booking_date=posting.booking_date,
        value_date=posting.value_date,
        acct_svcr_ref=posting.reference,
        bank_tx_code=code,
        details=details,
        batch_booked=len(details) > 1,
    )


def balance_before(conn: Connection, account_id: int, day: dt.date) -> int:
    p = t_postings.c
    query = select(*sums.split_total(p.amount_minor))
    query = query.where(p.account_id == account_id, p.booking_date < day)
    return sums.exact_total(*conn.execute(query).one())
