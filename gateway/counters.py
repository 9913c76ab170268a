"""Named sequences (message ids, statement numbers) that work alike on SQLite and PostgreSQL.

Two kinds of row here are not sequences but days, as the number YYYYMMDD:
`first_day:<IBAN>`, the local day an account first appeared in the ledger, a fact that
never changes once written (the ledger's accounts carry no creation date, and statements
begin on that day: SPEC §8, `statements.first_business_day`); and the last day something
was done, which only moves on (`note_day`: `dayorder.DueRun`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, insert, select, update

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
    return None if value is None else _day(int(value))


def note_day(conn: Connection, name: str, day: dt.date) -> None:
    """Note `day` under `name`, unless a later day is noted there already."""
    sequences.advance(conn, db.counters, {name: 0})  # the row, made once however many ask
    c = db.counters.c
    conn.execute(
        update(db.counters).where(c.name == name, c.value < _yyyymmdd(day))
        .values(value=_yyyymmdd(day))
    )  # fmt: skip


def days(conn: Connection, names: Iterable[str]) -> dict[str, dt.date]:
    """The days noted under `names` (`note_day`), of those that have one."""
    c = db.counters.c
    rows = conn.execute(select(c.name, c.value).where(c.name.in_(list(names)), c.value > 0))
    return {str(name): _day(int(value)) for name, value in rows}


def _day(value: int) -> dt.date:
    return dt.date(value // 10_000, value // 100 % 100, value % 100)


def _yyyymmdd(day: dt.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day
