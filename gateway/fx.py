"""Exchange at the ECB euro reference rate (SPEC §13): the pure part.

A rate is a quote of the ECB kind: units of a currency per 1 EUR, an exact decimal.
The rates valid for execution on a day `D` are those dated the last ECB (TARGET)
business day before `D` — the rate known at the start of `D` (`DayRates`, built by
`gateway.rates.store.rates_for_day`). Nothing here reads a database or the clock.

`convert` turns an amount into another currency: through EUR when neither side is
EUR (the cross rate `q_to / q_from`), computed exactly in integers and rounded
half-up once, to the target currency's ISO 4217 minor unit. `gateway.pricing` does
that for a payment on both sides (the debit in the debtor account's currency and, for
a treasury account in a third currency, the credit in the creditor's) and books it
through the treasury's position accounts.

Outcomes are values: a `Conversion`, or `NoRate` (the payment waits), `Overflow`
or `BelowMinorUnit` (the payment is rejected, AM12).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from ledger import currency

if TYPE_CHECKING:
    from gateway.pricing import Route

EUR = "EUR"
# The treasury's currencies the ECB quotes every TARGET business day. A rate file must
# carry each of them for each of its days; others in the file (IDR, ZAR …) are ignored.
ECB_QUOTED: tuple[str, ...] = (
    "USD", "JPY", "CZK", "DKK", "GBP", "HUF", "PLN", "SEK", "CHF", "NOK", "AUD", "CAD",
)  # fmt: skip
# The treasury's currencies the ECB does not quote (RUB since March 2022, BYN never):
# their rates are entered by hand (`rates set`), and only theirs.
SET_BY_HAND: tuple[str, ...] = tuple(
    sorted(set(currency.EXPONENTS) - set(ECB_QUOTED) - {EUR})
)

# A quote is stored as exact text; these bound it (the ECB's have at most six
# significant digits and five decimals).
rate_decimals_max = 10
rate_integer_digits_max = 9
# camt `XchgRate` (BaseOneRate): at most 10 decimals and 11 digits in all.
xchg_rate_decimals_max = 10
xchg_rate_digits_max = 11


def rate_problem(rate: Decimal) -> str | None:
    """Why `rate` cannot be a quote (units per 1 EUR), or None if it can."""
    if not rate.is_finite():
        return f"rate {rate} is not a number"
    if rate <= 0:
        return f"rate must be positive, not {rate}"
    if rate.adjusted() >= rate_integer_digits_max:
        return f"rate {rate} has more than {rate_integer_digits_max} integer digits"
    exponent = rate.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > rate_decimals_max:
        return f"rate {rate} has more than {rate_decimals_max} decimals"
    return None


def rate_text(rate: Decimal) -> str:
    """The canonical text of a quote or rate: plain notation, no trailing zeros."""
    return format(rate.normalize(), "f")


_rate_shown = lru_cache(maxsize=1024)(rate_text)  # per converted payment's AddtlInf


class Quote(NamedTuple):
    """One stored rate that a conversion read: marked `used` when the payment is booked."""

    rate_date: dt.date
    currency: str
    rate: Decimal


ECB_RATE = "ECB rate"
TREASURY_RATE = "treasury rate"  # set with `rates set` (no ECB rate: RUB, BYN)


@dataclass(frozen=True, slots=True)
class DayRates:
    """The rates valid for execution on `day`: quotes dated `rate_date` (units per 1 EUR).

    A currency without a stored rate for `rate_date` is simply absent from `quotes`.
    `pairs` keeps what `convert` worked out for each pair of currencies on these rates
    (`pair_on`), and `routes` what `gateway.pricing` worked out for each instructed, debit
    and credit currency (`pricing.route`), so that a run's payments cost a look-up each, not a rate
    calculation and a netting of postings."""

    day: dt.date
    rate_date: dt.date
    quotes: Mapping[str, Decimal]
    pairs: dict[tuple[str, str], Pair | NoRate] = field(
        default_factory=dict, compare=False, repr=False
    )
    routes: dict[tuple[str, str, str], Route | NoRate] = field(
        default_factory=dict, compare=False, repr=False
    )


# -- outcomes ------------------------------------------------------------------------------


class Conversion(NamedTuple):
    """`source_minor` of `source` is `amount_minor` of `target`.

    `rate` is the camt `XchgRate`: target units per source unit, rounded half-up to
    10 decimals (fewer when the schema's 11 digits require). The amount was computed
    from the exact cross rate, not from this rounded one."""

    source: str
    target: str
    source_minor: int
    amount_minor: int
    rate: Decimal
    rate_date: dt.date
    quotes: tuple[Quote, ...]
    rate_name: str = ECB_RATE  # whose rate: `Pair.rate_name`

    @property
    def text(self) -> str:
        """`1 USD = 0.9476876422 EUR, ECB rate of 2024-11-18: 947.69 EUR` (under 105
        characters, the length of a pain.002 `AddtlInf`)."""
        note = note_on(self.source, self.target, self.rate, self.rate_date, self.rate_name)
        return note.text(self.amount_minor)


class Note(NamedTuple):
    """A conversion's text around its amount (the same for every amount of a pair)."""

    before: str
    target: str

    def text(self, amount_minor: int) -> str:
        return f"{self.before}{currency.format_minor(amount_minor, self.target)} {self.target}"


def note_on(source: str, target: str, rate: Decimal, rate_date: dt.date, name: str) -> Note:
    """`name`: whose rate it is (`Pair.rate_name`)."""
    return Note(f"1 {source} = {_rate_shown(rate)} {target}, {name} of {rate_date}: ", target)


@dataclass(frozen=True, slots=True)
class NoRate:
    """No rate for `pair` (`EUR/USD`) dated `rate_date` yet: the payment waits."""

    pair: str
    rate_date: dt.date

    @property
    def text(self) -> str:
        return f"no {self.pair} rate for {self.rate_date}"


@dataclass(frozen=True, slots=True)
class Overflow:
    """The converted amount does not fit the amount type, or (`rate`) one unit of the
    source is more of the target than camt's `XchgRate` can show: RJCT AM12."""

    source: str
    target: str
    source_minor: int
    rate: bool = False

    @property
    def text(self) -> str:
        amount = currency.format_minor(self.source_minor, self.source)
        if self.rate:
            return (
                f"1 {self.source} is more {self.target} than the {xchg_rate_digits_max} "
                f"digits of XchgRate can show: {amount} {self.source} cannot be converted"
            )
        return f"{amount} {self.source} in {self.target} does not fit an amount"


@dataclass(frozen=True, slots=True)
class BelowMinorUnit:
    """The converted amount rounds to zero (1 HUF is not a cent): RJCT AM12."""

    source: str
    target: str
    source_minor: int

    @property
    def text(self) -> str:
        amount = currency.format_minor(self.source_minor, self.source)
        return f"{amount} {self.source} is less than half a minor unit of {self.target}"


Unconvertible = NoRate | Overflow | BelowMinorUnit
CREDITOR_CURRENCY = "the credit side's currency"
CREDITOR_PAIR = "credit-side"  # "no credit-side rate for …": short, to fit `AddtlInf`
_Untold = TypeVar("_Untold", bound=NoRate | Overflow | BelowMinorUnit)


def creditor_side(found: _Untold) -> _Untold:
    """`found` of the credit side's conversion (a treasury account in a third currency),
    as the payer is told it: naming no currency of that account, which may be another
    client's (a client sees nothing that is not its own)."""
    if isinstance(found, NoRate):
        return replace(found, pair=CREDITOR_PAIR)
    return replace(found, target=CREDITOR_CURRENCY)


# -- conversion ----------------------------------------------------------------------------


def _half_up(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half-up, for non-negative numerators."""
    return (2 * numerator + denominator) // (2 * denominator)


def _ratio(q_from: Decimal, q_to: Decimal, shift: int) -> tuple[int, int]:
    """The exact factor from minor units of one currency to minor units of another, as
    (numerator, denominator): `q_to / q_from * 10**shift`, so that a payment costs two
    integer operations."""
    factor = Fraction(q_to) / Fraction(q_from) * Fraction(10) ** shift
    return factor.numerator, factor.denominator


def _display_rate(q_from: Decimal, q_to: Decimal) -> Decimal | None:
    """Target units per source unit for `XchgRate`, or None if no rounding fits."""
    exact = Fraction(q_to) / Fraction(q_from)
    integer_digits = len(str(int(exact))) if exact >= 1 else 0
    decimals = min(xchg_rate_decimals_max, xchg_rate_digits_max - integer_digits)
    while decimals >= 0:
        scale = 10**decimals
        scaled = _half_up(exact.numerator * scale, exact.denominator)
        if len(str(scaled)) <= xchg_rate_digits_max:  # rounding may add a digit (9.99… → 10)
            return Decimal(scaled).scaleb(-decimals)
        decimals -= 1
    return None


def _quote(code: str, rates: DayRates) -> Decimal | None:
    return _ONE if code == EUR else rates.quotes.get(code)


_ONE = Decimal(1)


class Pair(NamedTuple):
    """What converting from one currency into another takes on a day's rates: the exact
    factor between their minor units, the rate shown, the stored rates read."""

    numerator: int
    denominator: int
    display: Decimal | None  # None: no `XchgRate` fits (the conversion is Overflow)
    quotes: tuple[Quote, ...]
    # Whose rate the text names: the ECB's, or the treasury's where one of the two
    # currencies has no ECB rate and its quote was set (`SET_BY_HAND`, `rates set`).
    rate_name: str = ECB_RATE


def pair_on(source: str, target: str, rates: DayRates) -> Pair | NoRate:
    """The pair `source` → `target` on `rates` (worked out once per day's rates)."""
    found = rates.pairs.get((source, target))
    if found is not None:
        return found
    q_from, q_to = _quote(source, rates), _quote(target, rates)
    if q_from is None or q_to is None:
        found = NoRate(f"{EUR}/{source if q_from is None else target}", rates.rate_date)
    else:
        shift = currency.EXPONENTS[target] - currency.EXPONENTS[source]
        numerator, denominator = _ratio(q_from, q_to, shift)
        quotes = _quotes(rates.rate_date, source, q_from, target, q_to)
        name = TREASURY_RATE if {source, target} & set(SET_BY_HAND) else ECB_RATE
        found = Pair(numerator, denominator, _display_rate(q_from, q_to), quotes, name)
    rates.pairs[source, target] = found
    return found


def convert(
    amount_minor: int, source: str, target: str, rates: DayRates
) -> Conversion | Unconvertible:
    """`amount_minor` of `source` in `target` at the rates valid on `rates.day`."""
    assert amount_minor > 0, amount_minor
    if source == target:
        return Conversion(source, target, amount_minor, amount_minor, _ONE, rates.rate_date, ())
    pair = pair_on(source, target, rates)
    if isinstance(pair, NoRate):
        return pair
    converted = converted_minor(amount_minor, source, target, pair)
    if not isinstance(converted, int):
        return converted
    assert pair.display is not None  # (else Overflow)
    return Conversion(
        source, target, amount_minor, converted, pair.display, rates.rate_date, pair.quotes,
        pair.rate_name,
    )


def converted_minor(
    amount_minor: int, source: str, target: str, pair: Pair
) -> int | Overflow | BelowMinorUnit:
    """`amount_minor` of `source` in minor units of `target`: half-up from the exact
    factor, once."""
    if pair.display is None:
        return Overflow(source, target, amount_minor, rate=True)
    converted = _half_up(amount_minor * pair.numerator, pair.denominator)
    if converted >= currency.minor_limit:
        return Overflow(source, target, amount_minor)
    if converted == 0:
        return BelowMinorUnit(source, target, amount_minor)
    return converted


def _quotes(
    rate_date: dt.date, source: str, q_from: Decimal, target: str, q_to: Decimal
) -> tuple[Quote, ...]:
    """The stored rates a conversion read (EUR has none)."""
    if source == EUR:
        return (Quote(rate_date, target, q_to),)
    if target == EUR:
        return (Quote(rate_date, source, q_from),)
    return (Quote(rate_date, source, q_from), Quote(rate_date, target, q_to))


def last_wait_day(due: dt.date, wait_days: int) -> dt.date:
    """The last day a payment due on `due` waits for its rate: it waits through
    `wait_days` business days (`fx_wait_days`), its execution day counted."""
    from ledger import calendar

    last = calendar.business_day_on_or_after(due)
    for _ in range(wait_days - 1):
        last = calendar.next_business_day(last)
    return last


def wait_is_over(due: dt.date, today: dt.date, wait_days: int) -> bool:
    """Whether a payment due on `due` that still finds no rate on `today` is rejected
    (`RJCT NARR`) rather than left waiting: on the business day after `last_wait_day`."""
    return today > last_wait_day(due, wait_days)


def waiting_text(missing: NoRate, due: dt.date, wait_days: int) -> str:
    """A waiting payment's `AddtlInf` (SPEC §6: why it waits and when it is expected to
    run): `no EUR/USD rate for 2027-11-24: executes once it is stored, rejected if none
    by the end of 2027-11-25`."""
    last = last_wait_day(due, wait_days)
    return f"{missing.text}: executes once it is stored, rejected if none by the end of {last}"
