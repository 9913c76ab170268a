"""A day's bookings and its statements take turns (SPEC §8: each statement holds every
entry of its day).

A booking decided the day it books on some moments before it writes: a big file that
passed its day's checks before `eod_time` may still be writing when end of day states that
day. Every transaction that books on a day therefore holds the day (`hold`, called by the
ledger before its first post on it), and every statement of a day closes it first
(`close`): on PostgreSQL a shared and an exclusive advisory lock of the day, so that a
statement waits for the bookings of its day in flight, and a booking that comes after a
statement waits for it to commit; on SQLite one writer at a time does the same. A booking
that then finds its day stated is refused (`BalanceConflict`: its run is done again, at a
moment that books on the next business day) — never written into a day whose statements
are out.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, select

from gateway import db
from gateway.outbound.camt053_v02 import MESSAGE as STATEMENT
from ledger.tx import BalanceConflict

_DAY_LOCK = 0x656B6164  # PostgreSQL advisory lock class of booking days ("ekad"), an int4

_STATED = select(db.statements.c.id).where(
    db.statements.c.business_date == bindparam("day"),
    db.statements.c.message == STATEMENT,
).limit(1)


def hold(conn: Connection, day: dt.date) -> None:
    """Before a transaction's first booking on `day`: wait for a statement of it being
    written; refuse the day once it is stated."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"SELECT pg_advisory_xact_lock_shared({_DAY_LOCK}, {day.toordinal()})"
        )
    if conn.execute(_STATED, {"day": day}).first() is not None:
        raise BalanceConflict(f"{day} is stated already: nothing more is booked on it")


def close(conn: Connection, day: dt.date) -> None:
    """Before a statement of `day` is written: wait for the bookings of it in flight."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_DAY_LOCK}, {day.toordinal()})")
