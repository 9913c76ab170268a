"""Executing a payment that needs an exchange (SPEC §13): the pure part of a run.

A payment whose instructed currency is not its debtor account's, or whose treasury
creditor keeps another currency, is priced at the rates valid on the run's day
(`pricing.route`: the latest ECB rate dated before it, cross rates through EUR, half-up to
each currency's minor unit) and then executed like any other against the `Book`:

1. no rate for the day yet: it waits (`PDNG`, "no EUR/USD rate for 2027-11-24: executes
   once it is stored, rejected if none by the end of 2027-11-25": `fx.waiting_text`), and
   once `fx_wait_days` business days have passed it is rejected (`NARR`);
2. a converted amount that does not fit the amount type, or rounds to nothing: `AM12`;
3. `max_payment` (`AM02`), the daily limit (`AM14`), the funds (`AM04`) and the
   accounts' status, all on the converted debit in the account's currency;
4. booked through the treasury's position account of each currency (`pricing.postings`),
   so that the transfer balances in each of its currencies; an external payment
   credits the clearing account of the instructed currency. Like any payment it is
   part of its payment information's one transfer when that is batch-booked (SPEC §6:
   one debit of the sum on the debtor's account, each creditor account credited once,
   each position account once per currency), otherwise booked on its own
   (`Bookings.add_converted`).

The payment's `AddtlInf` (rate, rate date, converted amount) goes to `Bookings.notes`
and the rates it used to `Bookings.quotes` (marked used when the run commits).
"""

from __future__ import annotations

from gateway import fx, large_days, pricing
from gateway.inbound.book import converted_text
from gateway.inbound.decide import Book, Bookings, Order, Waiting
from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from ledger import currency
from ledger.core import Account


def execute_order(
    order: Order, credit_iban: str, book: Book, bookings: Bookings
) -> Finding | str | Waiting:
    """Execute one order: the large-payment-day rule first (SPEC §14: before AM14 and
    AM04) when the run has a gate, then as it is, or converted when its currency is not
    both accounts' (SPEC §13)."""
    gate = bookings.gate if order.currency == large_days.CURRENCY else None
    if gate is not None:
        held = gate.judge(order.seq, order.amount_minor, order.carried_over)
        if held is not None:
            return Waiting(held.text, held.executes_on)
    debtor, creditor = book.accounts.get(order.debtor_iban), book.accounts.get(credit_iban)
    if debtor is None or creditor is None or debtor.currency == order.currency == creditor.currency:
        found = book.execute(order.debtor_iban, credit_iban, order.currency, order.amount_minor)
        result: Finding | str | Waiting = found or bookings.add(order, credit_iban)
    else:
        result = execute(order, debtor, creditor, book, bookings)
    if gate is not None and isinstance(result, str):
        gate.passed(order.amount_minor)  # a refused payment does not count towards the day
    return result


def execute(
    order: Order, debtor: Account, credit: Account, book: Book, bookings: Bookings
) -> Finding | str | Waiting:
    """Price and execute `order` from `debtor` to `credit` (the accounts as in `book`)."""
    rates = bookings.rates
    assert rates is not None and rates.day == bookings.day, "the shell reads the day's rates"
    route = pricing.route(order.currency, debtor.currency, credit.currency, rates)
    if isinstance(route, fx.NoRate):
        due = order.due or bookings.day
        if fx.wait_is_over(due, bookings.day, bookings.fx_wait_days):
            # (The day it waited from: after the daemon was down, the rate it lacks now is
            # a later day's than the one it first waited for.)
            return Finding(
                Reason.NARR,
                f"{route.text}: none came within {bookings.fx_wait_days} business day(s) "
                f"of {due}",
            )
        return Waiting(fx.waiting_text(route, due, bookings.fx_wait_days))
    priced = route.price(order.amount_minor)
    if not isinstance(priced, pricing.Priced):
        return Finding(Reason.AM12, priced.text)
    limit = debtor.max_payment_minor
    if limit is not None and priced.debit_minor > limit:
        return _above_maximum(priced, debtor.currency, limit)
    found = book.exchange(debtor.iban, credit.iban, priced)
    if found is not None:
        return found
    if (note := priced.note) is not None:
        bookings.notes[order.seq] = note
    return bookings.add_converted(order, credit.iban, priced)


def _above_maximum(priced: pricing.Priced, ccy: str, limit: int) -> Finding:
    """`max_payment` on the converted debit (judged at execution: SPEC §13): AM02."""
    return Finding(
        Reason.AM02,
        f"{converted_text(priced, priced.debit_minor, ccy)}, above the maximum "
        f"payment {currency.format_minor(limit, ccy)}",
    )
