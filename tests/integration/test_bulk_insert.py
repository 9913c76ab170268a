"""`ledger.bulk.insert_rows` writes exactly what SQLAlchemy's own INSERT would, on SQLite
and PostgreSQL: converted values, columns in any order, NULL columns left out; and
`inserting` runs its block while PostgreSQL finishes a COPY."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.bulk import insert_rows, inserting, values_rows_max
from ledger.engine import make_engine

metadata = sa.MetaData()
things = sa.Table(
    "bulk_things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("day", sa.Date, nullable=True),
    sa.Column("note", sa.String(20), nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=True),
)
COLUMNS = ("amount", "name", "note", "flag", "day")  # not the table's order


def _written(
    url: str, chunks: list[list[list[object]]], **options: bool
) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for rows in chunks:
                insert_rows(conn, things, COLUMNS, rows, **options)
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(things.c.amount, things.c.name, things.c.note, things.c.flag,
                          things.c.day).order_by(things.c.id)
            )  # fmt: skip
            return [tuple(r) for r in found]
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_rows_come_back_as_written(tmp_path: Path, database_url: str) -> None:
    day = dt.date(2026, 12, 1)
    chunks = [
        # every nullable column NULL in the whole chunk
        [[None, "a", None, True, None], [None, "b", None, False, None]],
        # some NULL, some not, in each column
        [[5, "c", None, True, day], [None, "d", "x", False, None]],
        # NULL only in one column throughout
        [[7, "e", None, True, day], [8, "f", None, True, day]],
    ]
    expected = [tuple(row) for rows in chunks for row in rows]
    for options in ({}, {"leave_out_null_columns": True}):
        copies = [[list(row) for row in rows] for rows in chunks]
        assert _written(database_url, copies, **options) == expected, options
    copies = [[list(row) for row in rows] for rows in chunks]
    got = _written(database_url, copies, convert_in_place=True, leave_out_null_columns=True)
    assert got == expected


def test_the_block_runs_while_a_copy_is_finished_and_its_failure_writes_nothing(
    database_url: str,
) -> None:
    """On PostgreSQL the rows of a COPY are sent before the block runs and the statement
    is finished after it: during the block the connection still has the COPY in progress
    (the server works through the rows meanwhile). Elsewhere, and for a few rows, the
    rows are in when the block runs. A block that fails leaves no row written."""
    many = values_rows_max + 1
    engine = make_engine(database_url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        seen: list[str] = []
        with engine.begin() as conn:
            for count in (3, many):
                rows = [[n, f"r{n}", None, True, None] for n in range(count)]
                with inserting(conn, things, COLUMNS, rows):
                    driver = conn.connection.driver_connection
                    if engine.dialect.name == "postgresql":
                        seen.append(driver.info.transaction_status.name)  # type: ignore[union-attr]
        expected = ["INTRANS", "ACTIVE"] if engine.dialect.name == "postgresql" else []
        assert seen == expected
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar() == 3 + many
        with pytest.raises(RuntimeError, match="the block failed"), engine.begin() as conn:
            rows = [[n, f"x{n}", None, True, None] for n in range(many)]
            with inserting(conn, things, COLUMNS, rows):
                raise RuntimeError("the block failed")
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar() == 3 + many
    finally:
        metadata.drop_all(engine)
        engine.dispose()
