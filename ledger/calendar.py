"""Latvian business days: Monday to Friday except public holidays, in Europe/Riga.

The holidays come from the `holidays` package, worked out once per year. Loading it
is slow (the package imports every country to find one), so a shell
may hand over years worked out before (`known_years` / `remember`: the gateway keeps
them in its spool, keyed by the package's version) and `holidays` is imported only
for a year not known yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

days_searched_max = 30  # no run of non-business days is longer than this
years_kept_max = 64

_years: dict[int, frozenset[dt.date]] = {}


def _holidays(year: int) -> frozenset[dt.date]:
    found = _years.get(year)
    if found is None:
        import holidays

        if len(_years) >= years_kept_max:
            _years.clear()
        found = _years[year] = frozenset(holidays.country_holidays("LV", years=year).keys())
    return found


def known_years() -> dict[int, frozenset[dt.date]]:
    """The years worked out (or handed over) in this process."""
    return dict(_years)


def remember(years: Mapping[int, Iterable[dt.date]]) -> None:
    """Take over years worked out by `holidays` earlier (same package version)."""
    for year, days in years.items():
        if len(_years) < years_kept_max:
            _years[year] = frozenset(days)


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_business_day(day: dt.date) -> dt.date:
    """The first business day strictly after `day`."""
    return business_day_on_or_after(day + dt.timedelta(days=1))


def business_day_on_or_after(day: dt.date) -> dt.date:
    for offset in range(days_searched_max):
        candidate = day + dt.timedelta(days=offset)
        if is_business_day(candidate):
            return candidate
    raise AssertionError(f"no business day within {days_searched_max} days of {day}")


def previous_business_day(day: dt.date) -> dt.date:
    for offset in range(1, days_searched_max):
        candidate = day - dt.timedelta(days=offset)
        if is_business_day(candidate):
            return candidate
    raise AssertionError(f"no business day within {days_searched_max} days before {day}")


def business_days_back(day: dt.date, count: int) -> dt.date:
    """The business day `count` business days before `day` (for duplicate windows)."""
    current = day
    for _ in range(count):
        current = previous_business_day(current)
    return current
