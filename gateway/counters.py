"""Named sequences (message ids, statement numbers) that work alike on SQLite and PostgreSQL.

One kind of row here is not a sequence but a fact that never changes once written:
`first_day:<IBAN>`, the local day an account first appeared in the ledger, as the
number YYYYMMDD. The ledger's accounts carry no creation date, and statements begin
on that day (SPEC §8, `statements.first_business_day`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, insert, select

from gateway import db
from ledger import sequences


def next_value(conn: Connection, name: str) -> int:
    """The next value of sequence `name`, inside the caller's transaction: dense and in
    commit order (statement numbers)."""
    return sequences.advance(conn, db.counters, {name: 1})[name]


def unique_value(conn: Connection, name: str) -> int:
    """A value of sequence `name` no other caller gets, without holding its row until the
    caller's transaction ends (message ids; `ledger.sequences.take`)."""
    return sequences.take(conn, db.counters, {name: 1})[name]


def first_day_name(iban: str) -> str:
    return f"first_day:{iban}"


def record_first_days(
    conn: Connection, known: set[str], ibans: Iterable[str], today: dt.date
) -> None:
    """Note `today` as the first day of each account in `ibans` that has no such note yet
    (`known`: the counter names that exist). Called right after the accounts are
    created, so an account's note is the day it appeared."""
    for iban in ibans:
        name = first_day_name(iban)
        if name not in known:
            conn.execute(insert(db.counters).values(name=name, value=_yyyymmdd(today)))


def first_day(conn: Connection, iban: str) -> dt.date | None:
    """The day recorded by `record_first_days`, if any."""
    value = conn.execute(
        select(db.counters.c.value).where(db.counters.c.name == first_day_name(iban))
    ).scalar()
    if value is None:
        return None
    return dt.date(int(value) // 10_000, int(value) // 100 % 100, int(value) % 100)


def _yyyymmdd(day: dt.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day
