"""Deciding what becomes of each payment: the pure core of a file's run.

For a chunk of a new file: the rules in `Reason` order (`rules.findings`), then for
each payment that passes, when it executes (`Clock.due`: cut-offs, business days, the
day's books), and for those due now, execution against the `Book` — the accounts the
run touches, as they stand in memory — into the `Bookings`, the ledger transfers the
run will post. A pending payment that falls due later goes through `execute` alone
(its rules were applied when it arrived). Nothing here reads the database, the disk or
the clock: the shell reads what is needed beforehand and writes what comes out.

Booking follows ISO batch booking (SPEC §6): the executed payments of a payment
information with `BtchBookg` true (the default) are ONE transfer in each run — one
debit of their sum on the debtor's account and a credit per creditor account (the
clearing account of the currency for payments leaving the treasury), converted
payments included (SPEC §13: their debits in the account's currency, with the position
accounts' legs) — and every payment keeps its own AcctSvcrRef; with `BtchBookg` false
each payment is a transfer. A pending payment executing later is part of its payment
information's batch in that later run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway import fx, large_days, pricing
from gateway.inbound import rules
from gateway.inbound.book import Book as Book  # (re-exported: `decide.Book`)
from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from gateway.references import FileRefs
from gateway.statuses import TxStatus
from gateway.text import time_of_day
from ledger import calendar
from ledger.core import Posting, Transfer, TransferKind

# -- when ------------------------------------------------------------------------------------


class Due(NamedTuple):
    """When a payment accepted now executes, and — if not now — why it waits."""

    day: dt.date
    why: str | None


@dataclass(frozen=True, slots=True)
class Clock:
    """The moments that decide when a file's payments execute (treasury local time)."""

    received: dt.datetime  # local time the file was received
    now: dt.datetime  # local time it is processed (an authorised batch: when complete)
    cutoff_internal: dt.time
    cutoff_external: dt.time
    eod_time: dt.time
    _seen: dict[tuple[dt.date, bool], Due] = field(default_factory=dict, compare=False)

    @property
    def today(self) -> dt.date:
        return self.now.date()

    @property
    def booking_open(self) -> bool:
        """Whether anything may still be booked today (a business day, before end of day)."""
        return calendar.booking_open(self.now, self.eod_time)

    def due(self, requested: dt.date, internal: bool) -> Due:
        """SPEC §6: today if received before the cut-off on a business day, otherwise the
        next business day; future dates on that business day (or the next). After end of
        day nothing more is booked on the day. Asked once per date and kind in a file."""
        key = (requested, internal)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._due(requested, internal)
        return found

    def now_or_later(self, due: Due) -> bool:
        """Whether a payment `due` executes as the file is taken: only if it was due on the
        day the file was received, and that day has come. One that was to wait at its
        receipt (for a later day) runs at the start of that day with the other payments
        due then, after those accepted before it — also when its file is taken only once
        that day has begun (received the evening before, the daemon down overnight)."""
        return due.day == self.received.date()  # (never earlier; and received <= now)

    def _due(self, requested: dt.date, internal: bool) -> Due:
        received = self.received
        day = received.date()
        if requested > day:
            due = calendar.business_day_on_or_after(requested)
            shown = "" if due == requested else " (not a business day)"
            return Due(due, f"requested for {requested}{shown}; executes {due}")
        cutoff = self.cutoff_internal if internal else self.cutoff_external
        kind = "internal" if internal else "external"
        if not calendar.is_business_day(day):
            due = calendar.next_business_day(day)
            return Due(due, f"received on {day:%A} {day}, not a business day; executes {due}")
        if received.time() >= cutoff:
            due = calendar.next_business_day(day)
            return Due(
                due,
                f"received {time_of_day(received, bool(cutoff.second))}, after the "
                f"{time_of_day(cutoff)} cut-off for {kind} "
                f"payments; executes {due}",
            )
        if day == self.today and not self.booking_open:
            due = calendar.next_business_day(day)
            return Due(
                due,
                f"the books of {day} closed at {time_of_day(self.eod_time)}; executes {due}",
            )
        return Due(day, None)


# -- what is posted --------------------------------------------------------------------------


class Order(NamedTuple):
    """A payment to execute now."""

    seq: int
    pmt_seq: int
    debtor_iban: str
    creditor_iban: str
    internal: bool  # to a treasury account; otherwise via the clearing account
    amount_minor: int
    currency: str
    batch: bool  # its payment information is batch-booked
    due: dt.date | None = None  # the day it fell due, if before the run's (a wait for a rate)
    carried_over: bool = False  # held by the large-payment-day rule before (SPEC §14)


class Waiting(NamedTuple):
    """A payment due now that cannot execute yet (no exchange rate; a large-payment day
    not announced: then until `due`): it stays PDNG."""

    text: str
    due: dt.date | None = None


@dataclass(slots=True)
class _Batch:
    """A batch-booked payment information's transfer in the making: the debit of its
    total on the debtor's account (in the account's currency), and what it moves on
    every other account — creditors, clearing and, for converted payments, position
    accounts — by (IBAN, currency)."""

    debtor_iban: str
    currency: str
    reference: str  # the batch's entry, which carries each of its payments
    debit: int = 0
    legs: Counter[tuple[str, str]] = field(default_factory=Counter)
    external: bool = False  # some payment leaves the treasury
    # The converted payments' amounts summed per route (`Bookings.add_converted`).
    routes: dict[pricing.Route, list[int]] = field(default_factory=dict)


class Bookings:
    """The ledger transfers of one execution run, as its payments are executed: batch-booked
    payment informations one transfer each (debit once, credit per creditor account, and
    per position account and currency for the converted payments among them); the
    payments booked on their own together in one transfer per chunk, each payment with
    its own entry — a posting under its own reference — on the client accounts it moves
    (the debtor's; a treasury creditor's). The treasury's own accounts get one posting
    per account and currency in that transfer: the clearing account for the payments
    leaving the treasury (SPEC §6: booked against it, as a batch's are), the position
    accounts for the conversions."""

    def __init__(
        self,
        refs: FileRefs,
        day: dt.date,
        clearing: Mapping[str, str],
        *,
        fx_wait_days: int = 2,
    ) -> None:
        self.refs = refs
        self.day = day
        self.clearing = clearing  # clearing account by currency
        # Exchange (SPEC §13, `exchange.py`): the rates valid on `day` (the shell reads
        # them before the first payment that needs one), the rates used, and each
        # converted payment's AddtlInf by its position.
        self.rates: fx.DayRates | None = None
        self.fx_wait_days = fx_wait_days
        self.quotes: set[fx.Quote] = set()
        self.notes: dict[int, str] = {}
        # The treasury's legs of the payments booked on their own: one posting each.
        self.pooled: Counter[tuple[str, str]] = Counter()
        self._single_routes: dict[pricing.Route, list[int]] = {}  # as `_Batch.routes`
        # The client's large-payment day (SPEC §14), when the shell found it may matter.
        self.gate: large_days.Gate | None = None
        # The executed payments' amounts as instructed, per currency (minor units).
        self.booked: Counter[str] = Counter()
        self.references: list[str] = []  # of the transfers handed out to be posted
        self._singles: list[Posting] = []
        self._first_single: int | None = None
        self._batches: dict[int, _Batch] = {}

    def credit_account(self, order: Order) -> str:
        return order.creditor_iban if order.internal else self.clearing[order.currency]

    def add(self, order: Order, credit_iban: str) -> str:
        """Book an executed payment; the reference of the entry that carries it."""
        self.booked[order.currency] += order.amount_minor
        amount, ccy = order.amount_minor, order.currency
        if order.batch:
            batch = self._batch(order, ccy)
            batch.debit += amount
            batch.legs[credit_iban, ccy] += amount
            return batch.reference
        return self._add_own(
            order, credit_iban, ((order.debtor_iban, ccy, -amount), (credit_iban, ccy, amount))
        )

    def add_converted(self, order: Order, credit_iban: str, priced: pricing.Priced) -> str:
        """Book an executed converted payment: the debtor's debit in its account's
        currency and the credit in the creditor's (`pricing.client_postings`),
        into its payment information's batch like any other, or on its own. Its legs on
        the position accounts are summed per route and booked once with the batch, or
        with the chunk's payments on their own (`pricing.position_postings`)."""
        self.booked[order.currency] += order.amount_minor
        ends = pricing.client_postings(priced, order.debtor_iban, credit_iban)
        if order.batch:
            (_, debit_ccy, debit), (_, credit_ccy, credit) = ends
            batch = self._batch(order, debit_ccy)
            batch.debit -= debit
            batch.legs[credit_iban, credit_ccy] += credit
            self._add_route(batch.routes, priced)
            return batch.reference
        self._add_route(self._single_routes, priced)
        return self._add_own(order, credit_iban, ends)

    def _add_route(self, routes: dict[pricing.Route, list[int]], priced: pricing.Priced) -> None:
        """Add a payment's amounts to its route's totals; a route's first payment marks
        the rates it reads as used."""
        totals = routes.get(priced.route)
        if totals is None:
            totals = routes[priced.route] = [0, 0, 0]
            self.quotes.update(priced.route.quotes)
        pricing.add_amounts(totals, priced)

    @staticmethod
    def _book_routes(
        routes: dict[pricing.Route, list[int]], into: Counter[tuple[str, str]]
    ) -> None:
        """The position accounts' legs of the routes' totals, into `into`; emptied."""
        for route, totals in routes.items():
            for iban, ccy, amount in pricing.position_postings(route, totals):
                into[iban, ccy] += amount
        routes.clear()

    def _batch(self, order: Order, debtor_currency: str) -> _Batch:
        """The batch of `order`'s payment information (debtor account in that currency)."""
        batch = self._batches.get(order.pmt_seq)
        if batch is None:
            batch = self._batches[order.pmt_seq] = _Batch(
                order.debtor_iban, debtor_currency, self.refs.batch_reference(order.pmt_seq)
            )
        assert (batch.debtor_iban, batch.currency) == (order.debtor_iban, debtor_currency)
        batch.external = batch.external or not order.internal
        return batch

    def _add_own(
        self, order: Order, credit_iban: str, legs: Iterable[tuple[str, str, int]]
    ) -> str:
        """Book a payment on its own (`legs`: IBAN, currency, amount): its legs on client
        accounts — the debtor's, a treasury creditor's — are its own entries, under its
        reference; those on the treasury's accounts (clearing, position) are pooled."""
        if self._first_single is None:
            self._first_single = order.seq
        reference = self.refs.payment_reference(order.seq)
        internal, pooled = order.internal, self.pooled
        for iban, ccy, amount in legs:
            if iban == order.debtor_iban or (internal and iban == credit_iban):
                self._singles.append(Posting(iban, amount, ccy, reference))
            else:
                pooled[iban, ccy] += amount
        return reference

    def take_singles(self) -> list[Transfer]:
        """The payments booked on their own since the last call, as one transfer."""
        first, legs = self._first_single, self._singles
        if first is None:
            return []
        self._first_single, self._singles = None, []
        self._book_routes(self._single_routes, self.pooled)
        legs += [Posting(i, amount, ccy) for (i, ccy), amount in self.pooled.items() if amount]
        self.pooled.clear()
        transfer = Transfer(
            self.refs.singles_key(first), self.refs.singles_reference(first),
            TransferKind.PAYMENTS, tuple(legs), self.day, self.day,
        )  # fmt: skip
        self.references.append(transfer.reference)
        return [transfer]

    def batches(self) -> list[Transfer]:
        """One transfer per batch-booked payment information with executed payments: its
        total debited once, credited per creditor account (after the last chunk)."""
        transfers = []
        for pmt_seq, batch in self._batches.items():
            self._book_routes(batch.routes, batch.legs)
            legs = [Posting(batch.debtor_iban, -batch.debit, batch.currency)]
            legs += [Posting(i, amount, ccy) for (i, ccy), amount in batch.legs.items() if amount]
            transfers.append(
                Transfer(
                    self.refs.batch_key(pmt_seq),
                    batch.reference,
                    TransferKind.EXTERNAL if batch.external else TransferKind.INTERNAL,
                    tuple(legs),
                    self.day,
                    self.day,
                )
            )
        self.references += [t.reference for t in transfers]
        return transfers


def execute(
    orders: Iterable[Order], book: Book, bookings: Bookings
) -> list[Finding | str | Waiting]:
    """Execute `orders` in order against `book`: for each, the finding that stops it, the
    reference of the transfer that carries it, or why it waits (`exchange.py`)."""
    from gateway.inbound import exchange  # (it builds on this module)

    return [
        exchange.execute_order(order, bookings.credit_account(order), book, bookings)
        for order in orders
    ]


# -- a chunk of a new file -------------------------------------------------------------------


class Decision(NamedTuple):
    """What became of one payment."""

    status: TxStatus
    reason: Reason | None
    info: str | None  # why it was refused, or why it waits and until when
    due_date: dt.date | None
    acct_svcr_ref: str | None  # its own reference, once booked
    transfer_ref: str | None  # the transfer that carries it (its own or its batch's)
    held_on: dt.date | None = None  # the large-payment day that held it (SPEC §14)


def rejected(finding: Finding, due_date: dt.date | None = None) -> Decision:
    return Decision(TxStatus.RJCT, finding.reason, finding.short(), due_date, None, None)


def decide(
    chunk: Sequence[rules.Candidate],
    ctx: rules.Context,
    clock: Clock,
    book: Book,
    bookings: Bookings,
) -> list[Decision]:
    """What becomes of each payment of a new file's chunk, in order (see the module)."""
    refused = rules.findings(chunk, ctx)
    decisions: list[Decision | None] = [None] * len(chunk)
    due_now: list[tuple[int, Order]] = []
    today = clock.today
    for i, tx, facts, pmt in chunk:
        finding = refused.get(i)
        if finding is not None:
            decisions[i] = rejected(finding)
            continue
        assert pmt.requested_date is not None and pmt.debtor is not None
        assert facts.amount_minor is not None and tx.creditor_iban is not None
        due = clock.due(pmt.requested_date, facts.internal)
        if not clock.now_or_later(due):
            decisions[i] = Decision(TxStatus.PDNG, None, due.why, due.day, None, None)
            continue
        order = Order(
            tx.seq, tx.pmt_seq, pmt.debtor.iban, tx.creditor_iban, facts.internal,
            facts.amount_minor, tx.currency, pmt.batch_booking,
        )  # fmt: skip
        due_now.append((i, order))
    results = execute([order for _, order in due_now], book, bookings)
    for (i, order), result in zip(due_now, results, strict=True):
        if isinstance(result, Finding):
            decisions[i] = rejected(result, today)
        elif isinstance(result, Waiting):
            later, held_on = (result.due, today) if result.due is not None else (today, None)
            decisions[i] = Decision(TxStatus.PDNG, None, result.text, later, None, None, held_on)
        else:
            own = bookings.refs.payment_reference(order.seq)
            note = bookings.notes.get(order.seq)
            decisions[i] = Decision(TxStatus.ACSC, None, note, today, own, result)
    assert all(d is not None for d in decisions)
    return decisions  # type: ignore[return-value]
