"""Named counters kept as rows (name, value): blocks of ids, message numbers.

`advance` moves counters inside the caller's transaction: the row stays locked until
that transaction ends, so the values are dense and in commit order — what statement
numbers need. `reserve` is for values that need only be unique (ledger ids, MsgIds): on
PostgreSQL it takes them in a short transaction of its own, committed at once, so that
two units of work in parallel never wait for each other's end on the counter's row (a
rolled-back unit leaves a gap, which uniqueness allows). On SQLite, one writer at a time,
the caller's transaction already holds the database: `reserve` is `advance` there.

The reservation commits with `synchronous_commit` off: a unit of work that uses the
values commits after it, and PostgreSQL's WAL is flushed in order, so no committed unit
can ever use values whose reservation a crash took back.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from sqlalchemy import Connection, Table, Update, bindparam, insert, update


@cache
def _advance_statement(table: Table) -> Update:
    """`value += :count` for the row named `:counter`, returning the new value (built once
    per table: SQLAlchemy keeps its compiled form)."""
    c = table.c
    return (
        update(table)
        .where(c.name == bindparam("counter"))
        .values(value=c.value + bindparam("count"))
        .returning(c.value)
    )


def advance(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    """Add each count to its counter, in name order (two callers never lock the rows in
    opposite orders); the new last values. A counter without a row starts at 0."""
    last: dict[str, int] = {}
    for name in sorted(wanted):
        count = wanted[name]
        value = conn.execute(_advance_statement(table), {"counter": name, "count": count})
        new = value.scalar()
        if new is None:
            conn.execute(insert(table).values(name=name, value=count))
            new = count
        last[name] = int(new)
    return last


def reserve(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    """Like `advance`, but the values are only unique, not in commit order: on PostgreSQL
    they are taken and committed outside `conn`'s transaction (see the module's text)."""
    if conn.dialect.name == "sqlite":
        return advance(conn, table, wanted)
    with conn.engine.connect() as own, own.begin():
        own.exec_driver_sql("SET LOCAL synchronous_commit TO off")
        return advance(own, table, wanted)
