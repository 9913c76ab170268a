"""The stored rates (`gw_rates`): importing a file, setting a rate by hand, reading the
rates valid on a day, and marking the rates a payment was converted with as used.

A rate is stored exactly, as the decimal text of the quote. A used rate never changes:
importing another value for its day and currency refuses the whole file, while an
unused one is simply corrected. The compare-and-set in `mark_used` and in corrections
keeps that true when an import and a booking run at the same time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway import db, fx
from gateway.errors import TransientError
from gateway.rates import ecb, target
from gateway.rates.ecb import Refused
from ledger import currency
from ledger.engine import writing

t = db.rates
MANUAL = "manual"  # the source (and form) of a rate set by hand (`rates set`)
__all__ = [
    "Imported", "RateChanged", "Refused", "StoredRate", "import_file", "mark_used",
    "rates_for_day", "set_rate", "store", "stored_on",
]  # fmt: skip


class RateChanged(TransientError):
    """A rate read for a conversion changed before the payment was booked: decide again."""


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import (or `rates set`) changed."""

    form: str
    first: dt.date
    last: dt.date
    days: int
    added: int
    corrected: int
    unchanged: int

    def line(self, name: str) -> str:
        span = f"{self.first}" if self.first == self.last else f"{self.first}..{self.last}"
        return (
            f"{name}: {self.days} day(s) {span}: {self.added} rate(s) added, "
            f"{self.corrected} corrected, {self.unchanged} unchanged"
        )


@dataclass(frozen=True, slots=True)
class StoredRate:
    currency: str
    rate: Decimal
    source: str
    used: bool


def import_file(
    engine: Engine, path: Path, *, now: dt.datetime, today: dt.date
) -> Imported | Refused:
    """Read `path` (an ECB file) and store every rate in it, or nothing."""
    found = ecb.read(path, today=today)
    if isinstance(found, Refused):
        return found
    return store(engine, found.days, source="ecb", form=found.form, now=now)


def set_rate(
    engine: Engine, day: dt.date, code: str, text: str, *, now: dt.datetime, today: dt.date
) -> Imported | Refused:
    """`rates set`: a hand-set rate for a currency the ECB does not quote (RUB, BYN),
    dated like an ECB rate: it is valid for execution on the next TARGET day after."""
    if code not in currency.EXPONENTS or code == fx.EUR:
        return Refused(f"--currency {code}: not a currency the treasury keeps besides EUR")
    if code not in fx.SET_BY_HAND:
        return Refused(
            f"--currency {code}: the ECB publishes {code}; import its file "
            f"(rates set is for {', '.join(fx.SET_BY_HAND)})"
        )
    if day > today:
        return Refused(f"--date {day} is in the future (today is {today})")
    if not target.is_publishing_day(day):
        return Refused(
            f"--date {day} is not an ECB business day: a hand-set rate is dated like the "
            "ECB's, on the business day before the execution days it serves"
        )
    rate = ecb.rate_from_text(text, "--rate")
    if isinstance(rate, Refused):
        return rate
    return store(engine, {day: {code: rate}}, source=MANUAL, form=MANUAL, now=now)


def store(
    engine: Engine,
    days: Mapping[dt.date, Mapping[str, Decimal]],
    *,
    source: str,
    form: str,
    now: dt.datetime,
) -> Imported | Refused:
    """Store the rates of `days` in one transaction, or refuse them all."""
    assert days
    codes = sorted({code for rates in days.values() for code in rates})
    first, last = min(days), max(days)
    try:
        with engine.connect() as conn, writing(conn):
            existing = _existing(conn, first, last, codes)
            new: list[dict[str, object]] = []
            corrections: list[tuple[dt.date, str, Decimal, Decimal]] = []
            conflicts: list[tuple[dt.date, str, Decimal, Decimal]] = []
            unchanged = 0
            for day in sorted(days):
                for code, rate in sorted(days[day].items()):
                    known = existing.get((day, code))
                    if known is None:
                        new.append(_row(day, code, rate, source, now))
                    elif known.rate == rate:
                        unchanged += 1
                    elif known.used:
                        conflicts.append((day, code, known.rate, rate))
                    else:
                        corrections.append((day, code, known.rate, rate))
            if conflicts:
                return _refuse_used(conflicts, _nothing_done(source))
            if new:
                conn.execute(insert(t), new)
            for day, code, old, rate in corrections:
                changed = conn.execute(
                    update(t)
                    .where(_key(day, code), t.c.used.is_(False), t.c.rate == fx.rate_text(old))
                    .values(rate=fx.rate_text(rate), source=source, recorded_at=now)
                ).rowcount
                if changed != 1:
                    raise _UsedMeanwhile(day, code)
    except _UsedMeanwhile as used:
        return Refused(
            f"the {used.code} rate of {used.day} was used by a payment meanwhile: "
            f"{_nothing_done(source)}, try again"
        )
    except IntegrityError as exc:
        raise TransientError("rates were being stored by another process: try again") from exc
    return Imported(form, first, last, len(days), len(new), len(corrections), unchanged)


class _UsedMeanwhile(Exception):
    def __init__(self, day: dt.date, code: str) -> None:
        super().__init__(f"{code} {day}")
        self.day = day
        self.code = code


def _nothing_done(source: str) -> str:
    """What a refusal leaves undone: an import (all or nothing), or the rate set by hand."""
    return "not changed" if source == MANUAL else "nothing imported"


def _refuse_used(conflicts: list[tuple[dt.date, str, Decimal, Decimal]], undone: str) -> Refused:
    day, code, old, rate = conflicts[0]
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    return Refused(
        f"the {code} rate of {day} was used for payments at {fx.rate_text(old)} and cannot "
        f"become {fx.rate_text(rate)}{more}: {undone}"
    )


def _row(
    day: dt.date, code: str, rate: Decimal, source: str, now: dt.datetime
) -> dict[str, object]:
    return {
        "rate_date": day,
        "currency": code,
        "rate": fx.rate_text(rate),
        "source": source,
        "used": False,
        "recorded_at": now,
    }


def _key(day: dt.date, code: str) -> ColumnElement[bool]:
    return and_(t.c.rate_date == day, t.c.currency == code)


def _existing(
    conn: Connection, first: dt.date, last: dt.date, codes: list[str]
) -> dict[tuple[dt.date, str], StoredRate]:
    rows = conn.execute(
        select(t.c.rate_date, t.c.currency, t.c.rate, t.c.source, t.c.used).where(
            t.c.rate_date.between(first, last), t.c.currency.in_(codes)
        )
    )
    return {
        (r.rate_date, r.currency): StoredRate(r.currency, Decimal(r.rate), r.source, r.used)
        for r in rows
    }


# -- reading -------------------------------------------------------------------------------


def stored_on(conn: Connection, rate_date: dt.date) -> dict[str, StoredRate]:
    """Every rate dated `rate_date`, by currency."""
    rows = conn.execute(
        select(t.c.currency, t.c.rate, t.c.source, t.c.used).where(t.c.rate_date == rate_date)
    )
    return {r.currency: StoredRate(r.currency, Decimal(r.rate), r.source, r.used) for r in rows}


def rates_for_day(conn: Connection, day: dt.date) -> fx.DayRates:
    """The rates valid for execution on `day`: those dated the last ECB business day
    before it. A currency not stored for that date is absent (its payments wait)."""
    rate_date = target.rate_date_for(day)
    found = stored_on(conn, rate_date)
    return fx.DayRates(day, rate_date, {code: s.rate for code, s in found.items()})


def mark_used(conn: Connection, quotes: Iterable[fx.Quote]) -> None:
    """Mark the rates converted payments were priced with as used, in the transaction
    that books them. If one changed since it was read, raise `RateChanged`: the
    transaction rolls back and the payments are decided again."""
    for quote in sorted(set(quotes)):
        changed = conn.execute(
            update(t)
            .where(_key(quote.rate_date, quote.currency), t.c.rate == fx.rate_text(quote.rate))
            .values(used=True)
        ).rowcount
        if changed != 1:
            raise RateChanged(
                f"the {quote.currency} rate of {quote.rate_date} is no longer {quote.rate}"
            )
