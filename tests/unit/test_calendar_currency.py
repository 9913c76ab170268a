"""Business days and money parsing: what cut-offs, statements and the CLI rely on."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import calendar, currency


@pytest.mark.parametrize(
    ("day", "business", "next_day"),
    [
        (dt.date(2026, 11, 18), False, dt.date(2026, 11, 19)),  # Proclamation Day
        (dt.date(2026, 11, 21), False, dt.date(2026, 11, 23)),  # Saturday
        (dt.date(2026, 11, 22), False, dt.date(2026, 11, 23)),  # Sunday
        (dt.date(2026, 11, 25), True, dt.date(2026, 11, 26)),
        (dt.date(2026, 12, 24), False, dt.date(2026, 12, 28)),  # Christmas Eve → after the weekend
        (dt.date(2026, 12, 25), False, dt.date(2026, 12, 28)),
        (dt.date(2026, 12, 31), False, dt.date(2027, 1, 4)),  # New Year's Eve, New Year, weekend
        (dt.date(2026, 5, 4), False, dt.date(2026, 5, 5)),  # Restoration of Independence
    ],
)
def test_latvian_calendar(day: dt.date, business: bool, next_day: dt.date) -> None:
    """Payments dated on a holiday or weekend execute on the next Latvian business day."""
    assert calendar.is_business_day(day) is business
    assert calendar.next_business_day(day) == next_day


def test_business_days_back_skips_weekend() -> None:
    """The five-business-day duplicate window reaches back across a weekend."""
    assert calendar.business_days_back(dt.date(2026, 11, 30), 5) == dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [("1000.50", "EUR", 100050), ("0.01", "EUR", 1), ("12", "JPY", 12), ("1e2", "EUR", 10000)],
)
def test_to_minor(text: str, code: str, minor: int) -> None:
    """Amounts become exact integer minor units."""
    assert currency.to_minor(text, code) == minor


@pytest.mark.parametrize(
    ("text", "code"),
    [("1.005", "EUR"), ("1.5", "JPY"), ("0", "EUR"), ("-1", "EUR"), ("abc", "EUR"), ("1", "XXX")],
)
def test_to_minor_refuses(text: str, code: str) -> None:
    """Too many decimals, zero, negative, junk and unknown currencies are refused."""
    with pytest.raises(currency.AmountError):
        currency.to_minor(text, code)


@given(st.integers(min_value=1, max_value=10**17), st.sampled_from(sorted(currency.EXPONENTS)))
def test_format_round_trips(minor: int, code: str) -> None:
    """What we print as an amount parses back to the same minor units."""
    assert currency.to_minor(currency.format_minor(minor, code), code) == minor


def _by_decimal(text: str, code: str) -> int | None:
    """What `to_minor` must answer, worked out with Decimal alone (None: refused)."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() >= currency.amount_digits_max:
        return None
    scaled = value.scaleb(currency.EXPONENTS[code])
    if scaled != scaled.to_integral_value() or scaled <= 0:
        return None
    minor = int(scaled)
    return minor if len(str(minor)) <= currency.amount_digits_max else None


amount_texts = st.one_of(
    st.from_regex(r"[0-9]{1,20}(\.[0-9]{0,4})?", fullmatch=True),
    st.sampled_from(["0", "0.00", "1.", ".5", "00012.30", "1e2", "-1.00", "+1.00", " 1.00",
                     "1_000.00", "١٢٣.٤٥", "²", "NaN", "Infinity", "1.234", "9" * 19,
                     "1e10000", "1e1000000", "1e-1000000", "9" * 18, "1e17", "1e18"]),
    st.text(alphabet="0123456789.-+e_ ", max_size=12),
)  # fmt: skip


@given(amount_texts, st.sampled_from(sorted(currency.EXPONENTS)))
def test_to_minor_agrees_with_decimal(text: str, code: str) -> None:
    """The quick path for `123.45` answers exactly as Decimal would."""
    try:
        got: int | None = currency.to_minor(text, code)
    except currency.AmountError:
        got = None
    assert got == _by_decimal(text, code), (text, code)
