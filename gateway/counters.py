"""Named sequences (message ids, statement numbers) that work alike on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, insert, update

from gateway import db


def next_value(conn: Connection, name: str) -> int:
    """The next value of sequence `name`, inside the caller's transaction (row-locked)."""
    value = conn.execute(
        update(db.counters)
        .where(db.counters.c.name == name)
        .values(value=db.counters.c.value + 1)
        .returning(db.counters.c.value)
    ).scalar()
    if value is None:
        conn.execute(insert(db.counters).values(name=name, value=1))
        return 1
    return int(value)
