"""Latvian business days: Monday to Friday except public holidays, in Europe/Riga.

The holidays come from the `holidays` package, worked out once per year. Loading it
is slow (the package imports every country to find one), so a shell
may hand over years worked out before (`known_years` / `remember`: the gateway keeps
them in its spool, keyed by the package's version) and `holidays` is imported only
for a year not known yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping

days_searched_max = 30  # no run of non-business days is longer than this
years_kept_max = 64

class Years:
    """The days of a calendar worked out once per year by `load` (it imports `holidays`),
    and years handed over by a shell that worked them out before (`known`, `remember`)."""

    def __init__(self, load: Callable[[int], Iterable[dt.date]]) -> None:
        self._load = load
        self._years: dict[int, frozenset[dt.date]] = {}

    def __call__(self, year: int) -> frozenset[dt.date]:
        found = self._years.get(year)
        if found is None:
            if len(self._years) >= years_kept_max:
                self._years.clear()
            found = self._years[year] = frozenset(self._load(year))
        return found

    def known(self) -> dict[int, frozenset[dt.date]]:
        """The years worked out (or handed over) in this process."""
        return dict(self._years)

    def remember(self, years: Mapping[int, Iterable[dt.date]]) -> None:
        """Take over years worked out by `holidays` earlier (same package version)."""
        for year, days in years.items():
            if len(self._years) < years_kept_max:
                self._years[year] = frozenset(days)

    def clear(self) -> None:
        self._years.clear()


def _latvian_holidays(year: int) -> Iterable[dt.date]:
    import holidays

    return holidays.country_holidays("LV", years=year).keys()


_holidays = Years(_latvian_holidays)


def known_years() -> dict[int, frozenset[dt.date]]:
    """The Latvian years worked out (or handed over) in this process."""
    return _holidays.known()


def remember(years: Mapping[int, Iterable[dt.date]]) -> None:
    """Take over Latvian years worked out by `holidays` earlier (same package version)."""
    _holidays.remember(years)


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_business_day(day: dt.date) -> dt.date:
    """The first business day strictly after `day`."""
    return business_day_on_or_after(day + dt.timedelta(days=1))


def booking_open(local: dt.datetime, eod_time: dt.time) -> bool:
    """Whether anything may still be booked at `local` (the treasury's time): a business
    day, before its end of day."""
    return is_business_day(local.date()) and local.time() < eod_time


def booking_day(local: dt.datetime, eod_time: dt.time) -> dt.date:
    """The day what happens at `local` is booked on: that day while its books are open
    (`booking_open`), else the next business day."""
    day = local.date()
    return day if booking_open(local, eod_time) else next_business_day(day)


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
