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

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Table,
    Update,
    bindparam,
    case,
    insert,
    update,
)


@cache
def _advance_statement(table: Table, count: int) -> Update:
    """For `count` counters: `value += :add<i>` where `name = :name<i>`, returning the
    new values; one statement, built once per table and count (SQLAlchemy keeps its
    compiled form)."""
    c = table.c
    names: list[BindParameter[str]] = [bindparam(f"name{i}") for i in range(count)]
    adds: list[tuple[ColumnElement[bool], BindParameter[int]]] = [
        (c.name == names[i], bindparam(f"add{i}")) for i in range(count)
    ]
    return (
        update(table)
        .where(c.name.in_(names))
        .values(value=c.value + case(*adds))
        .returning(c.name, c.value)
    )


def advance(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    """Add each count to its counter, in one statement; the new last values. A counter
    without a row starts at 0."""
    names = sorted(wanted)
    params: dict[str, str | int] = {f"name{i}": name for i, name in enumerate(names)}
    params.update({f"add{i}": wanted[name] for i, name in enumerate(names)})
    rows = conn.execute(_advance_statement(table, len(names)), params)
    last = {str(name): int(value) for name, value in rows}
    for name in names:
        if name not in last:  # a new database: the counter starts here
            conn.execute(insert(table).values(name=name, value=wanted[name]))
            last[name] = wanted[name]
    return last


def reserve(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    """Like `advance`, but the values are only unique, not in commit order: on PostgreSQL
    they are taken and committed outside `conn`'s transaction (see the module's text)."""
    if conn.dialect.name == "sqlite":
        return advance(conn, table, wanted)
    with conn.engine.connect() as own, own.begin():
        own.exec_driver_sql("SET LOCAL synchronous_commit TO off")
        return advance(own, table, wanted)


reserved_block = 32  # values a process reserves at once for `take` on PostgreSQL
_blocks: dict[tuple[str, str, str], tuple[int, int]] = {}  # (database, table, name): next, last


def take(conn: Connection, table: Table, name: str) -> int:
    """One value of counter `name`, unique but neither dense nor in commit order (message
    ids). On PostgreSQL it comes from a block this process reserved (`reserve`), so most
    calls touch no row at all; values of a block a process did not use before it ended
    are never used. On SQLite it is `advance` (see the module's text)."""
    if conn.dialect.name == "sqlite":
        return advance(conn, table, {name: 1})[name]
    key = (conn.engine.url.render_as_string(hide_password=False), table.name, name)
    value, last = _blocks.get(key, (1, 0))
    if value > last:
        last = reserve(conn, table, {name: reserved_block})[name]
        value = last - reserved_block + 1
    _blocks[key] = (value + 1, last)
    return value
