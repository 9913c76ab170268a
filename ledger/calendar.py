"""Latvian business days: Monday to Friday except public holidays, in Europe/Riga."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

days_searched_max = 30  # no run of non-business days is longer than this


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("LV", years=year).keys())


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
