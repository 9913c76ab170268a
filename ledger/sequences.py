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
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Table,
    Update,
    bindparam,
    case,
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
    without a row starts at 0: its row is made (unless another transaction made it
    meanwhile: this one then waits for that one to end) and advanced like the others."""
    last = _advanced(conn, table, wanted)
    new = {name: count for name, count in wanted.items() if name not in last}
    if new:
        conn.execute(_insert_new(conn, table), [{"name": name, "value": 0} for name in new])
        last |= _advanced(conn, table, new)
    assert last.keys() == wanted.keys(), (sorted(wanted), sorted(last))
    return last


def _advanced(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    names = sorted(wanted)
    params: dict[str, str | int] = {f"name{i}": name for i, name in enumerate(names)}
    params.update({f"add{i}": wanted[name] for i, name in enumerate(names)})
    rows = conn.execute(_advance_statement(table, len(names)), params)
    return {str(name): int(value) for name, value in rows}


def _insert_new(conn: Connection, table: Table) -> Insert:
    """INSERT of counter rows that leaves a row another transaction made alone (two daemons
    taking a new counter's first value at once: a plain INSERT failed on the key)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[table.c.name])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[table.c.name])


def reserve(conn: Connection, table: Table, wanted: Mapping[str, int]) -> dict[str, int]:
    """Like `advance`, but the values are only unique, not in commit order: on PostgreSQL
    they are taken and committed outside `conn`'s transaction (see the module's text)."""
    if conn.dialect.name == "sqlite":
        return advance(conn, table, wanted)
    with conn.engine.connect() as own, own.begin():
        own.exec_driver_sql("SET LOCAL synchronous_commit TO off")
        return advance(own, table, wanted)


reserved_block = 32  # values a process reserves at once per counter for `take`, at least
# … and at least this many times what is asked: a big file asks for a chunk's ids at a
# time, and its chunks then share a reservation rather than each making one.
reserved_ahead = 8
# The blocks each engine reserved, by (table, counter): next, last. An engine is one
# database for its life; a database made again under the same URL (a test, a bench run)
# gets a new engine, so no block outlives the counter rows it was reserved from.
_blocks: WeakKeyDictionary[Engine, dict[tuple[str, str], tuple[int, int]]] = WeakKeyDictionary()


def take(
    conn: Connection, table: Table, wanted: Mapping[str, int], *, block: int = reserved_block
) -> dict[str, int]:
    """For each counter, the first of `wanted[name]` consecutive values, unique but neither
    dense nor in commit order (ledger ids, message ids). On PostgreSQL they come from a
    block this process reserved (`reserve`, at least `block` values and `reserved_ahead`
    times what is asked at once, the counters that run short together), so most calls
    touch no row at all; values of a block a
    process did not use before it ended are never used. On SQLite it is `advance` (see
    the module's text)."""
    if conn.dialect.name == "sqlite":
        return {n: v - wanted[n] + 1 for n, v in advance(conn, table, wanted).items()}
    blocks = _blocks.setdefault(conn.engine, {})
    keys = {name: (table.name, name) for name in wanted}
    short = {
        name: max(count * reserved_ahead, block)
        for name, count in wanted.items()
        if (held := blocks.get(keys[name], (1, 0)))[0] + count - 1 > held[1]
    }
    if short:
        for name, last in reserve(conn, table, short).items():
            blocks[keys[name]] = (last - short[name] + 1, last)
    first = {}
    for name, count in wanted.items():
        value, last = blocks[keys[name]]
        blocks[keys[name]] = (value + count, last)
        first[name] = value
    return first
