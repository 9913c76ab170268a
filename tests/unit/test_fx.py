"""Conversion at the ECB reference rate (SPEC §13): amounts, rounding, the rate a
statement shows, and postings that balance in every currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import fx, pricing
from gateway.samples import iban_lv
from ledger import currency

RATE_DATE = dt.date(2024, 11, 18)
DAY = dt.date(2024, 11, 19)
# The ECB's rates of 18 November 2024.
ECB = {
    "USD": Decimal("1.0552"), "JPY": Decimal("163.74"), "HUF": Decimal("408.7"),
    "GBP": Decimal("0.8356"), "CZK": Decimal("25.282"), "CHF": Decimal("0.9364"),
}  # fmt: skip
RATES = fx.DayRates(DAY, RATE_DATE, ECB)
DEBTOR = iban_lv("TREL", 9_100_000_000_001)
CREDITOR = iban_lv("TREL", 9_100_000_000_101)
CLEARING_USD = iban_lv("TREL", 9_980_000_000_014)


def converted(
    amount_minor: int, source: str, target: str, rates: fx.DayRates = RATES
) -> fx.Conversion:
    result = fx.convert(amount_minor, source, target, rates)
    assert isinstance(result, fx.Conversion), result
    return result


@pytest.mark.parametrize(
    ("amount", "source", "target", "expected", "rate"),
    [
        # 1000.00 USD from a EUR account: 1000 / 1.0552 = 947.687642… EUR
        (100000, "USD", "EUR", 94769, "0.9476876422"),
        # 1000.00 EUR to a USD account: exactly 1055.20 USD
        (100000, "EUR", "USD", 105520, "1.0552000000"),
        # JPY has no minor unit: 100.00 EUR is 16374 yen
        (10000, "EUR", "JPY", 16374, "163.74000000"),
        # a cross rate through EUR: 1000.00 USD in yen = 1000 × 163.74 / 1.0552 = 155174.37…
        (100000, "USD", "JPY", 155174, "155.17437453"),
        # and back: 155174 JPY in USD = 155174 × 1.0552 / 163.74 = 999.9976…
        (155174, "JPY", "USD", 100000, "0.0064443630"),
        # HUF keeps two decimals (ISO 4217): 1000.00 EUR = 408700.00 HUF
        (100000, "EUR", "HUF", 40870000, "408.70000000"),
    ],
)
def test_amounts_and_the_rate_shown(
    amount: int, source: str, target: str, expected: int, rate: str
) -> None:
    """The debit is the exact amount rounded half-up to the target's minor unit; the
    statement's XchgRate is target units per source unit, 10 decimals within 11 digits."""
    result = converted(amount, source, target)
    assert result.amount_minor == expected
    assert str(result.rate) == rate
    assert result.rate_date == RATE_DATE


def test_half_a_minor_unit_rounds_up() -> None:
    """0.01 EUR at 1.5 is 0.015 USD: half-up gives 0.02 (and 0.03 EUR gives 0.05)."""
    rates = fx.DayRates(DAY, RATE_DATE, {"USD": Decimal("1.5")})
    assert converted(1, "EUR", "USD", rates).amount_minor == 2
    assert converted(3, "EUR", "USD", rates).amount_minor == 5
    below = fx.DayRates(DAY, RATE_DATE, {"USD": Decimal("1.4999")})
    assert converted(1, "EUR", "USD", below).amount_minor == 1


def test_the_quotes_read_are_named_for_marking_them_used() -> None:
    """A cross conversion reads two quotes of the rate date; EUR is no quote."""
    assert converted(100, "USD", "JPY").quotes == (
        fx.Quote(RATE_DATE, "USD", ECB["USD"]),
        fx.Quote(RATE_DATE, "JPY", ECB["JPY"]),
    )
    assert converted(100, "EUR", "USD").quotes == (fx.Quote(RATE_DATE, "USD", ECB["USD"]),)


def test_a_rate_the_treasury_set_is_not_called_the_ecbs() -> None:
    """RUB and BYN have no ECB rate (`rates set`): a conversion reading one names the
    treasury's rate (the note said "ECB rate of …" for a rate the ECB never published)."""
    rates = fx.DayRates(
        DAY, RATE_DATE, {"USD": Decimal("1.0552"), "RUB": Decimal("90.5"), "BYN": Decimal("3.3")}
    )
    assert "ECB rate of 2024-11-18: " in converted(100, "EUR", "USD", rates).text
    for source, target in (("EUR", "RUB"), ("RUB", "USD"), ("BYN", "RUB")):
        text = converted(100, source, target, rates).text
        assert ", treasury rate of 2024-11-18: " in text and "ECB" not in text, text
        priced = pricing.price(100, source, target, target, rates)  # the pain.002 AddtlInf
        assert isinstance(priced, pricing.Priced) and "treasury rate of" in priced.note


def test_a_missing_rate_names_the_pair_and_date() -> None:
    """No PLN quote stored for the day: the payment waits with `no EUR/PLN rate for …`."""
    result = fx.convert(100, "PLN", "USD", RATES)
    assert isinstance(result, fx.NoRate)
    assert result.text == "no EUR/PLN rate for 2024-11-18"
    result = fx.convert(100, "USD", "RUB", RATES)
    assert isinstance(result, fx.NoRate) and result.pair == "EUR/RUB"


def test_an_amount_that_does_not_fit_is_an_overflow() -> None:
    """The largest EUR amount in yen has more than 18 digits: AM12, not a crash."""
    result = fx.convert(10**18 - 1, "EUR", "JPY", RATES)
    assert isinstance(result, fx.Overflow)
    assert "does not fit" in result.text


def test_a_rate_too_long_for_xchg_rate_says_so() -> None:
    """0.01 BYN at a hand-set 0.0000000001 per EUR is 15,831,000,000 JPY: the amount fits,
    but 1 BYN is more yen than XchgRate's 11 digits can show: AM12 naming the rate, not
    the amount."""
    rates = fx.DayRates(DAY, RATE_DATE, {"JPY": Decimal("158.31"), "BYN": Decimal("1E-10")})
    result = fx.convert(1, "BYN", "JPY", rates)
    assert isinstance(result, fx.Overflow)
    assert result.text == (
        "1 BYN is more JPY than the 11 digits of XchgRate can show: 0.01 BYN cannot be "
        "converted"
    )
    assert "does not fit" in fx.convert(10**18 - 1, "EUR", "JPY", RATES).text  # the amount


def test_less_than_half_a_cent_is_refused() -> None:
    """0.01 HUF is 0.0000245 EUR: it rounds to nothing, which is no debit (AM12)."""
    result = fx.convert(1, "HUF", "EUR", RATES)
    assert isinstance(result, fx.BelowMinorUnit)


def test_the_text_for_the_status_report_fits_addtl_inf() -> None:
    """pain.002 AddtlInf states rate, rate date and the converted amount in 105 characters."""
    text = converted(100000, "USD", "EUR").text
    assert text == "1 USD = 0.9476876422 EUR, ECB rate of 2024-11-18: 947.69 EUR"
    longest = converted(10**17, "GBP", "JPY").text
    assert len(longest) <= 105, longest


@pytest.mark.parametrize(
    ("rate", "problem"),
    [
        ("0", "positive"), ("-1.05", "positive"), ("NaN", "not a number"),
        ("1.00000000001", "decimals"), ("1000000000", "integer digits"),
    ],
)  # fmt: skip
def test_rate_problems(rate: str, problem: str) -> None:
    found = fx.rate_problem(Decimal(rate))
    assert found is not None and problem in found


def test_good_rates_pass_and_are_stored_without_trailing_zeros() -> None:
    assert fx.rate_problem(Decimal("163.7400")) is None
    assert fx.rate_text(Decimal("163.7400")) == "163.74"
    assert fx.rate_text(Decimal("100")) == "100"


def test_only_rub_and_byn_are_set_by_hand() -> None:
    assert fx.SET_BY_HAND == ("BYN", "RUB")
    assert set(fx.ECB_QUOTED) | set(fx.SET_BY_HAND) | {"EUR"} == set(currency.EXPONENTS)


# -- properties ------------------------------------------------------------------------------

CODES = sorted(currency.EXPONENTS)
quotes = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4, allow_nan=False
).filter(lambda d: d > 0)
day_rates = st.fixed_dictionaries({code: quotes for code in CODES if code != "EUR"}).map(
    lambda q: fx.DayRates(DAY, RATE_DATE, q)
)
amounts = st.integers(min_value=1, max_value=10**18 - 1)


def _exact(amount: int, source: str, target: str, rates: fx.DayRates) -> Fraction:
    q = {"EUR": Decimal(1), **rates.quotes}
    shift = currency.EXPONENTS[target] - currency.EXPONENTS[source]
    return amount * Fraction(q[target]) / Fraction(q[source]) * Fraction(10) ** shift


@settings(max_examples=400, deadline=None)
@given(amounts, st.sampled_from(CODES), st.sampled_from(CODES), day_rates)
def test_converted_amounts_match_the_rate_within_half_a_minor_unit(
    amount: int, source: str, target: str, rates: fx.DayRates
) -> None:
    """For any amount, pair and rates: the result is the exact amount within half a
    minor unit, or an overflow (18 digits) or too small, never wrong or a crash."""
    result = fx.convert(amount, source, target, rates)
    exact = _exact(amount, source, target, rates)
    if isinstance(result, fx.Overflow):
        assert exact + Fraction(1, 2) >= 10**18 or _rate_unshowable(source, target, rates)
        return
    if isinstance(result, fx.BelowMinorUnit):
        assert exact < Fraction(1, 2)
        return
    assert isinstance(result, fx.Conversion)
    assert abs(result.amount_minor - exact) <= Fraction(1, 2)
    assert 0 < result.amount_minor < 10**18
    # The rate shown: within half its last digit of the exact one, in the schema's form.
    q = {"EUR": Decimal(1), **rates.quotes}
    exact_rate = Fraction(q[target]) / Fraction(q[source])
    _, digits, exponent = result.rate.as_tuple()
    assert isinstance(exponent, int) and -exponent <= 10 and len(digits) <= 11
    assert abs(Fraction(result.rate) - exact_rate) <= Fraction(1, 2) * Fraction(10) ** exponent


def _rate_unshowable(source: str, target: str, rates: fx.DayRates) -> bool:
    q = {"EUR": Decimal(1), **rates.quotes}
    return Fraction(q[target]) / Fraction(q[source]) >= 10**11


sides = st.sampled_from(CODES)


@settings(max_examples=400, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**15), sides, sides, sides, day_rates, st.booleans()
)
def test_postings_balance_in_every_currency(
    amount: int, instructed: str, debtor_ccy: str, creditor_ccy: str, rates: fx.DayRates,
    external: bool,
) -> None:
    """Whatever the currencies of the debtor account, the instruction and the creditor
    account (or the clearing account of an external payment), a priced payment's
    postings sum to zero per currency; the debtor loses the debit, the creditor gains
    the credit, and each conversion shows on the position accounts."""
    if external:
        creditor_ccy = instructed  # booked against the clearing account of that currency
    priced = pricing.price(amount, instructed, debtor_ccy, creditor_ccy, rates)
    if not isinstance(priced, pricing.Priced):
        assert isinstance(priced, fx.Overflow | fx.BelowMinorUnit)
        return
    creditor = CLEARING_USD if external else CREDITOR
    lines = pricing.postings(priced, DEBTOR, creditor)
    sums: dict[str, int] = {}
    for line in lines:
        sums[line.currency] = sums.get(line.currency, 0) + line.amount_minor
    assert set(sums.values()) <= {0}
    by_account = {(line.iban, line.currency): line.amount_minor for line in lines}
    assert by_account[(DEBTOR, debtor_ccy)] == -priced.debit_minor
    assert by_account[(creditor, creditor_ccy)] == priced.credit_minor
    positions = pricing.position_ibans()
    touched = {line.iban for line in lines} - {DEBTOR, creditor}
    assert touched <= set(positions.values())
    if debtor_ccy == instructed == creditor_ccy:
        assert not touched and not priced.route.quotes
    if debtor_ccy != instructed and creditor_ccy == instructed:
        assert by_account[(positions[debtor_ccy], debtor_ccy)] == priced.debit_minor
        assert by_account[(positions[instructed], instructed)] == -amount


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**15), sides, sides, sides, day_rates)
def test_a_routes_netted_legs_are_the_conversions_netted_by_account(
    amount: int, instructed: str, debtor_ccy: str, creditor_ccy: str, rates: fx.DayRates
) -> None:
    """A route nets its postings once, for any amount, by naming amounts by what they
    equal: the same postings as the payment's own conversions (`fx.convert`, one side at
    a time) netted account by account (every leg written out, then summed per account
    and currency, zeros dropped)."""
    priced = pricing.price(amount, instructed, debtor_ccy, creditor_ccy, rates)
    if not isinstance(priced, pricing.Priced):
        return
    positions = pricing.position_ibans()
    debit, credit = (converted(amount, instructed, c, rates) for c in (debtor_ccy, creditor_ccy))
    assert (priced.debit_minor, priced.credit_minor) == (debit.amount_minor, credit.amount_minor)
    written = [(DEBTOR, debtor_ccy, -debit.amount_minor)]
    if debit.quotes:
        written += [
            (positions[debtor_ccy], debtor_ccy, debit.amount_minor),
            (positions[instructed], instructed, -amount),
        ]
    if credit.quotes:
        written += [
            (positions[creditor_ccy], creditor_ccy, -credit.amount_minor),
            (positions[instructed], instructed, amount),
        ]
    written.append((CREDITOR, creditor_ccy, credit.amount_minor))
    netted: dict[tuple[str, str], int] = {}
    for iban, code, minor in written:
        netted[iban, code] = netted.get((iban, code), 0) + minor
    lines = pricing.postings(priced, DEBTOR, CREDITOR)
    assert {(p.iban, p.currency): p.amount_minor for p in lines} == {
        key: minor for key, minor in netted.items() if minor
    }
    assert len(lines) == len({(p.iban, p.currency) for p in lines})  # one leg per account
    assert lines[0] == pricing.Posting(DEBTOR, debtor_ccy, -debit.amount_minor)
    again = pricing.price(amount + 1, instructed, debtor_ccy, creditor_ccy, rates)
    assert not isinstance(again, pricing.Priced) or again.route is priced.route  # worked out once


@pytest.mark.parametrize(
    ("creditor_ccy", "creditor", "credited"),
    [
        # 1000.00 USD to an external creditor: EUR leaves the account into the EUR
        # position, USD leaves the USD position for the USD clearing account.
        ("USD", CLEARING_USD, 100000),
        # … to a treasury account in JPY: credited in JPY, converted again from the
        # instructed USD; the USD position nets out.
        ("JPY", CREDITOR, 155174),
    ],
)
def test_a_usd_payment_from_a_eur_account_books_four_postings(
    creditor_ccy: str, creditor: str, credited: int
) -> None:
    """A EUR account pays 1000.00 USD: debited 947.69 EUR through the EUR position; the
    credit side's currency leaves its position account for the creditor."""
    priced = pricing.price(100000, "USD", "EUR", creditor_ccy, RATES)
    assert isinstance(priced, pricing.Priced)
    assert (priced.debit_minor, priced.credit_minor) == (94769, credited)
    positions = pricing.position_ibans()
    assert pricing.postings(priced, DEBTOR, creditor) == (
        pricing.Posting(DEBTOR, "EUR", -94769),
        pricing.Posting(positions["EUR"], "EUR", 94769),
        pricing.Posting(positions[creditor_ccy], creditor_ccy, -credited),
        pricing.Posting(creditor, creditor_ccy, credited),
    )


def test_position_accounts_are_distinct_treasury_ibans() -> None:
    """One position account per currency, none shared with funding or clearing ones."""
    positions = pricing.position_ibans()
    assert set(positions) == set(currency.EXPONENTS)
    assert len(set(positions.values())) == len(positions)
    assert all(iban.startswith("LV") and "TREL997" in iban for iban in positions.values())


def test_a_payment_waits_fx_wait_days_business_days_for_its_rate() -> None:
    """Due on Wednesday 17 November 2027 with fx_wait_days = 2: it waits on Wednesday
    and Friday (Thursday is Proclamation Day) and is rejected on Monday 22nd."""
    due = dt.date(2027, 11, 17)
    assert not fx.wait_is_over(due, due, 2)
    assert not fx.wait_is_over(due, dt.date(2027, 11, 19), 2)
    assert fx.wait_is_over(due, dt.date(2027, 11, 22), 2)
    assert fx.wait_is_over(due, dt.date(2027, 11, 19), 1)
