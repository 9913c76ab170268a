"""Fast multi-row INSERT for the hot path (100k+ rows per file).

SQLAlchemy's executemany spends most of its time building a parameter dict per
row; here the statement is compiled once for the connection's dialect and the
DBAPI driver gets plain tuples (or, for named-parameter drivers, dicts).

PostgreSQL is a server a round trip away, and executes an executemany row by row:
there a few rows go in ONE statement with an array per column (`unnest`), and many by
`COPY … FROM STDIN`, the bulk path PostgreSQL is made for. Same rows, same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    **options: bool,
) -> None:
    """INSERT `rows` (in `columns` order) into `table`: `inserting` (and its options),
    with nothing to do meanwhile."""
    with inserting(conn, table, columns, rows, **options):
        pass


@contextmanager
def inserting(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    convert_in_place: bool = False,
    leave_out_null_columns: bool = False,
) -> Iterator[None]:
    """INSERT `rows` (in `columns` order) into `table` in one executemany (PostgreSQL:
    one statement, or COPY); the block runs while the database finishes them.

    A COPY's rows reach PostgreSQL as they are written and the server works through
    them behind: the statement is finished only when the block ends, so work that needs
    no database (rendering the answer of the rows just written) overlaps the server's.
    Elsewhere the block runs after the rows are in.

    With `convert_in_place`, rows (lists) have their values converted for the driver
    where they are — dates become text on SQLite — sparing a 100,000-row file a copy
    of every row; the caller must not read those values afterwards.

    With `leave_out_null_columns`, a nullable column that is NULL in every row is left
    out of the statement (it is NULL all the same): the driver binds no value for it.
    (sqlite3 looks each None up as a value to adapt, a cost per row and column.)"""
    if not rows:
        yield
        return
    positions = list(range(len(columns)))  # where each column's value is in a row
    if leave_out_null_columns:
        nullable = _nullable(table, tuple(columns))
        empty = {i for i in nullable if not _any_value(rows, i)}
        positions = [i for i in positions if i not in empty]
    kept = tuple(columns[i] for i in positions)
    sql, converters, order = _statement(table, kept, conn.dialect)
    # Memoised per call: dates repeat across a file's rows, timestamps do not repeat
    # across calls (a memo kept for the process's life would only grow).
    processors = [(positions[index], _memo(proc)) for index, proc in converters]
    if processors and convert_in_place:
        for index, proc in processors:
            for row in rows:
                value = row[index]
                if value is not None:
                    row[index] = proc(value)  # type: ignore[index]
    elif processors:
        rows = [_processed(row, processors) for row in rows]
    # One C-level pick per row takes the statement's values, in its order.
    take = positions if order is None else [positions[i] for i in order]
    pick = itemgetter(*take) if len(take) > 1 else (lambda row: (row[take[0]],))
    if conn.dialect.name == "postgresql":
        with _inserting_postgres(conn, table, [columns[i] for i in take], list(map(pick, rows))):
            yield
        return
    if order is None:  # named parameters
        params: list[Any] = [dict(zip(kept, pick(row), strict=True)) for row in rows]
    else:
        params = list(map(pick, rows))
    conn.exec_driver_sql(sql, params)
    yield


def _any_value(rows: Sequence[Sequence[Any]], index: int) -> bool:
    """Whether any row holds a value (not None) at `index`: stops at the first, in C."""
    return any(map(is_not, map(itemgetter(index), rows), repeat(None)))


@lru_cache(maxsize=64)
def _nullable(table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(columns) if table.c[name].nullable)


@lru_cache(maxsize=64)
def _statement(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[tuple[int, Any]], list[int] | None]:
    """The INSERT compiled once per table, columns and dialect: its SQL, the columns'
    bind processors (dates on SQLite, …) as SQLAlchemy would apply them, and the
    order of positional parameters (None for named ones)."""
    compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(columns))
    converters = [
        (i, proc)
        for i, name in enumerate(columns)
        if (proc := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    order = None
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
    return str(compiled), converters, order


def _processed(row: Sequence[Any], processors: list[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for index, proc in processors:
        if values[index] is not None:
            values[index] = proc(values[index])
    return tuple(values)


def _memo(proc: Any) -> Any:
    """Dates and times repeat across a file's rows: convert each distinct value once."""
    cache: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = proc(value)
            return result

    return convert


values_rows_max = 500  # PostgreSQL: up to this many rows in one INSERT, more by COPY


@contextmanager
def _inserting_postgres(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> Iterator[None]:
    """A few rows: ONE statement with an array per column (`unnest`), whose text and
    parameter count do not depend on the number of rows, so the driver converts it once
    and the server prepares it once per connection; many rows: `COPY`, finished after
    the block.

    The driver's cursor is used directly: what it raises is made SQLAlchemy's error of the
    same kind, as from any statement (`DBAPIError.instance`: an `IntegrityError`, a
    `ProgrammingError` for a refused permission …), so that the run tells a fault of the
    database from what a file's values provoked the same way whatever wrote the rows."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"INSERT INTO {table.name}"
    try:
        if len(rows) <= values_rows_max:
            sql = _unnest_insert(table, tuple(columns), conn.dialect)
            cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            yield
            return
        statement = f"COPY {_target(table, tuple(columns), conn.dialect)} FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
            yield
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


@lru_cache(maxsize=64)
def _target(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    return f"{quote(table.name)} ({', '.join(quote(c) for c in columns)})"


@lru_cache(maxsize=64)
def _unnest_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    arrays = ", ".join(f"%s::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns)
    return f"INSERT INTO {_target(table, columns, dialect)} SELECT * FROM unnest({arrays})"
