"""`ledger.bulk.insert_rows` writes exactly what SQLAlchemy's own INSERT would, on SQLite
and PostgreSQL: converted values, columns in any order, NULL columns left out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from ledger.bulk import insert_rows
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
