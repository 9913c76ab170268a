"""The execution of converted payments in a run (`gateway.inbound.exchange`), against the
real `Book` and `Bookings`: for random amounts, currencies and rates, the debit and the
credit match the rate within half a minor unit, every transfer balances in each of its
currencies (clearing and position accounts included), the book holds exactly what the
postings say, and nothing moves for a payment that waits or is refused."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import fx, pricing
from gateway.environment import CLEARING_BASE
from gateway.inbound import decide
from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from gateway.references import FileRefs
from gateway.samples import iban_lv
from ledger import core, currency
from ledger.core import Account, AccountKind

DAY = dt.date(2024, 11, 19)  # a Tuesday: the rates of Monday the 18th
RATE_DATE = dt.date(2024, 11, 18)
CODES = sorted(currency.EXPONENTS)
DEBTOR = iban_lv("TREL", 9_100_000_000_001)
CREDITOR = iban_lv("TREL", 9_100_000_000_101)
EXTERNAL = iban_lv("HABA", 1_234_567)
BALANCE = 10**18  # above any amount that fits (18 digits): no converted debit is AM04


def account(
    n: int, iban: str, code: str, kind: AccountKind, owner: str, **limits: int | None
) -> Account:
    return Account(
        n, iban, code, owner, kind, "open", 0, limits.get("max_payment"),
        limits.get("daily_limit"), BALANCE if kind is AccountKind.CLIENT else 0,
    )  # fmt: skip


def world(
    debtor_ccy: str, creditor_ccy: str | None, **limits: int | None
) -> tuple[decide.Book, dict[str, str]]:
    """A book with the debtor, maybe a treasury creditor, and every clearing and
    position account; and the clearing accounts by currency."""
    accounts = [account(1, DEBTOR, debtor_ccy, AccountKind.CLIENT, "a", **limits)]
    if creditor_ccy is not None:
        accounts.append(account(2, CREDITOR, creditor_ccy, AccountKind.CLIENT, "b"))
    clearing = {}
    for index, code in enumerate(CODES):
        clearing[code] = iban_lv("TREL", CLEARING_BASE + index)
        accounts.append(account(10 + index, clearing[code], code, AccountKind.CLEARING, "t"))
        position = pricing.position_ibans()[code]
        accounts.append(account(40 + index, position, code, AccountKind.POSITION, "t"))
    return decide.Book({a.iban: a for a in accounts}, {}), clearing


def run(
    order: decide.Order, book: decide.Book, clearing: dict[str, str], rates: fx.DayRates
) -> tuple[Finding | str | decide.Waiting, decide.Bookings]:
    bookings = decide.Bookings(FileRefs("a", "ab" * 32, 1, 1), DAY, clearing, fx_wait_days=2)
    bookings.rates = rates
    [result] = decide.execute([order], book, bookings)
    return result, bookings


def exact(amount_minor: int, source: str, target: str, rates: fx.DayRates) -> Fraction:
    """The exact value in minor units of `target`."""
    quote = {**{c: Fraction(q) for c, q in rates.quotes.items()}, "EUR": Fraction(1)}
    shift = currency.EXPONENTS[target] - currency.EXPONENTS[source]
    return amount_minor * quote[target] / quote[source] * Fraction(10) ** shift


quotes = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("99999.9999"), places=4, allow_nan=False
)


# A converted payment's world: the debtor account's, the instructed and the treasury
# creditor's currency (None: an external payment), the day's rates, batch booking.
routes = {
    "debtor_ccy": st.sampled_from(CODES),
    "instructed": st.sampled_from(CODES),
    "creditor_ccy": st.one_of(st.none(), st.sampled_from(CODES)),
    "rates": st.fixed_dictionaries({c: quotes for c in CODES if c != "EUR"}),
    "batch": st.booleans(),
}


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(min_value=1, max_value=10**12), **routes)
def test_converted_payments_balance_per_currency_within_half_a_minor_unit(
    debtor_ccy: str,
    instructed: str,
    creditor_ccy: str | None,
    amount: int,
    rates: dict[str, Decimal],
    batch: bool,
) -> None:
    day_rates = fx.DayRates(DAY, RATE_DATE, {c: q.normalize() for c, q in rates.items()})
    book, clearing = world(debtor_ccy, creditor_ccy)
    before = {iban: a.balance_minor for iban, a in book.accounts.items()}
    internal = creditor_ccy is not None
    order = decide.Order(
        7, 0, DEBTOR, CREDITOR if internal else EXTERNAL, internal, amount, instructed, batch
    )
    result, bookings = run(order, book, clearing, day_rates)
    transfers = bookings.take_singles() + bookings.batches()
    if isinstance(result, Finding):  # the converted amount does not fit, or is nothing
        assert result.reason is Reason.AM12
        assert transfers == [] and {i: book.balance[i] for i in before} == before
        return
    assert isinstance(result, str)
    core.assert_balanced(transfers)
    sums: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    for transfer in transfers:
        for leg in transfer.postings:
            sums[leg.currency] += leg.amount_minor
            moved[leg.iban] += leg.amount_minor
            assert book.accounts[leg.iban].currency == leg.currency
    assert not any(sums.values())
    state = book.state()
    assert {i: state[i].balance_minor - before[i] for i in before} == {
        i: moved.get(i, 0) for i in before
    }
    credit_iban = CREDITOR if internal else clearing[instructed]
    credit_ccy = creditor_ccy if creditor_ccy is not None else instructed
    half = Fraction(1, 2)
    assert abs(-moved[DEBTOR] - exact(amount, instructed, debtor_ccy, day_rates)) <= half
    assert abs(moved[credit_iban] - exact(amount, instructed, credit_ccy, day_rates)) <= half
    converted = debtor_ccy != instructed or credit_ccy != instructed
    assert converted == bool(bookings.quotes)
    # The payer is told of its own side's conversion only (a creditor's currency
    # may be another client's).
    assert (order.seq in bookings.notes) == (debtor_ccy != instructed)


def test_a_missing_rate_waits_then_is_narr_and_nothing_moves() -> None:
    rates = fx.DayRates(DAY, RATE_DATE, {"JPY": Decimal("163.74")})  # no USD
    book, clearing = world("EUR", None)
    before = dict(book.balance)
    order = decide.Order(1, 0, DEBTOR, EXTERNAL, False, 100_00, "USD", False)
    result, bookings = run(order, book, clearing, rates)
    # SPEC §6: why it waits and when it runs (the order is due on the run's day, the 19th)
    assert result == decide.Waiting(
        f"no EUR/USD rate for {RATE_DATE}: executes once it is stored, rejected if none by the "
        "end of 2024-11-20"
    )
    # Due Thursday the 14th: it waited Thursday and Friday (Monday the 18th is a Latvian
    # holiday); due Friday, it may still wait on Tuesday.
    result, _ = run(order._replace(due=dt.date(2024, 11, 15)), book, clearing, rates)
    assert isinstance(result, decide.Waiting)
    result, _ = run(order._replace(due=dt.date(2024, 11, 14)), book, clearing, rates)
    assert isinstance(result, Finding) and result.reason is Reason.NARR
    assert book.balance == before and bookings.take_singles() == []


def test_limits_judge_the_converted_debit() -> None:
    """max_payment 100.00 EUR: 105.52 USD is exactly 100.00 EUR (executes), 105.53 USD
    is 100.01 EUR (AM02); the daily limit of 150.00 EUR then stops 52.77 USD (50.01 EUR)
    but not 52.76 USD (50.00 EUR)."""
    rates = fx.DayRates(DAY, RATE_DATE, {"USD": Decimal("1.0552")})
    book, clearing = world("EUR", None, max_payment=100_00, daily_limit=150_00)
    amounts = [105_52, 105_53, 52_77, 52_76]
    orders = [
        decide.Order(n, 0, DEBTOR, EXTERNAL, False, a, "USD", False) for n, a in enumerate(amounts)
    ]
    bookings = decide.Bookings(FileRefs("a", "ab" * 32, 1, 1), DAY, clearing)
    bookings.rates = rates
    results = decide.execute(orders, book, bookings)
    reasons = [r.reason if isinstance(r, Finding) else r for r in results]
    assert isinstance(reasons[0], str) and isinstance(reasons[3], str)
    assert reasons[1:3] == [Reason.AM02, Reason.AM14]
    assert book.balance[DEBTOR] == BALANCE - 150_00


def test_a_conversion_that_does_not_fit_or_rounds_to_nothing_is_am12() -> None:
    """9,999,999,999,999,999.99 EUR from a HUF account is 4.087 × 10^20 fillér: more than
    the 18 digits of an amount; 0.01 HUF from a EUR account is 0.0000245 EUR: nothing.
    Neither moves anything."""
    rates = fx.DayRates(DAY, RATE_DATE, {"HUF": Decimal("408.7")})
    book, clearing = world("HUF", None)
    before = dict(book.balance)
    huge = decide.Order(1, 0, DEBTOR, EXTERNAL, False, 10**18 - 1, "EUR", False)
    result, bookings = run(huge, book, clearing, rates)
    assert isinstance(result, Finding) and result.reason is Reason.AM12
    assert "does not fit an amount" in result.info
    book, clearing = world("EUR", None)
    tiny = decide.Order(2, 0, DEBTOR, EXTERNAL, False, 1, "HUF", False)
    result, bookings = run(tiny, book, clearing, rates)
    assert isinstance(result, Finding) and result.reason is Reason.AM12
    assert "less than half a minor unit of EUR" in result.info
    assert bookings.take_singles() == [] and not bookings.quotes
    assert before[DEBTOR] == book.balance[DEBTOR] == BALANCE


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=6),
    **routes,
)
def test_a_runs_postings_are_its_payments_postings_summed(
    debtor_ccy: str,
    instructed: str,
    creditor_ccy: str | None,
    amounts: list[int],
    rates: dict[str, Decimal],
    batch: bool,
) -> None:
    """The payments of a run on one route book their position accounts' legs once, for
    their totals (`pricing.position_postings`): what the run's transfers move on each
    account is exactly what each payment's own postings (`pricing.postings`) move,
    added up."""
    day_rates = fx.DayRates(DAY, RATE_DATE, {c: q.normalize() for c, q in rates.items()})
    book, clearing = world(debtor_ccy, creditor_ccy)
    internal = creditor_ccy is not None
    credit_iban = CREDITOR if internal else clearing[instructed]
    creditor = CREDITOR if internal else EXTERNAL
    orders = [
        decide.Order(n, 0, DEBTOR, creditor, internal, a, instructed, batch)
        for n, a in enumerate(amounts)
    ]
    bookings = decide.Bookings(FileRefs("a", "ab" * 32, 1, 1), DAY, clearing)
    bookings.rates = day_rates
    results = decide.execute(orders, book, bookings)
    expected: Counter[tuple[str, str]] = Counter()
    credit_ccy = creditor_ccy if creditor_ccy is not None else instructed
    for order, result in zip(orders, results, strict=True):
        if not isinstance(result, str):  # refused (AM12): nothing of it is booked
            continue
        priced = pricing.price(order.amount_minor, instructed, debtor_ccy, credit_ccy, day_rates)
        assert isinstance(priced, pricing.Priced)
        for leg in pricing.postings(priced, DEBTOR, credit_iban):
            expected[leg.iban, leg.currency] += leg.amount_minor
    moved: Counter[tuple[str, str]] = Counter()
    for transfer in bookings.take_singles() + bookings.batches():
        for posted in transfer.postings:
            moved[posted.iban, posted.currency] += posted.amount_minor
    assert +moved == +expected and -moved == -expected  # (zero sums left out on both sides)
