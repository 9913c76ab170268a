"""`ledger.sequences.take`: values from a block a process reserved, never from a block
reserved in another database — even one that was made again under the same URL."""

from __future__ import annotations

import sqlalchemy as sa

from ledger import sequences

metadata = sa.MetaData()
counters = sa.Table(
    "block_counters",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


def _take(url: str, count: int) -> tuple[int, int]:
    """A fresh database at `url` (the table made again), and `count` values taken there by
    a new engine: the first value, and the counter's row afterwards."""
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            first = sequences.take(conn, counters, {"postings": count}, block=1024)["postings"]
        with engine.connect() as conn:
            stored = conn.execute(sa.select(counters.c.value)).scalar()
        return first, int(stored or 0)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_a_database_made_again_under_the_same_url_reserves_its_own_block(pg_url: str) -> None:
    first, stored = _take(pg_url, 2)
    assert (first, stored) == (1, 1024)
    # The same URL, a database without the rows of the first: a block held over from it
    # would hand out 3 and 4 while this database's counter says nothing was taken, and
    # the next process to reserve here would get them again.
    again, stored = _take(pg_url, 2)
    assert again == 1 and stored == 1024


def test_values_come_from_the_block_without_touching_the_row(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            taken = [sequences.take(conn, counters, {"ids": 10}, block=32)["ids"] for _ in range(9)]
            stored = conn.execute(sa.select(counters.c.value)).scalar()
        # Asked for 10 at a time, a process reserves `reserved_ahead` times that (80, more
        # than the block of 32): eight takes from one reservation, the ninth from the next.
        assert sequences.reserved_ahead == 8
        assert taken == [1 + 10 * n for n in range(9)] and stored == 160
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_two_transactions_taking_a_new_counters_first_value_take_turns(pg_url: str) -> None:
    """Two daemons stating an account's first statement at once both make the counter's
    row: the second waits for the first to commit and gets the next value — it failed
    on the row's key (`UniqueViolation`, `eod.failed` at error level)."""
    import threading

    engine = sa.create_engine(pg_url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        got: list[int | BaseException] = []
        with engine.connect() as first:
            tx = first.begin()
            assert sequences.advance(first, counters, {"statement:X": 1}) == {"statement:X": 1}

            def second() -> None:
                try:
                    with engine.begin() as conn:
                        got.append(sequences.advance(conn, counters, {"statement:X": 1})[
                            "statement:X"
                        ])
                except BaseException as exc:  # reported below
                    got.append(exc)

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(timeout=1.0)
            assert thread.is_alive() and got == [], "the second waits for the first's row"
            tx.commit()
            thread.join(timeout=30)
        assert got == [2], got
        with engine.connect() as conn:
            assert conn.execute(sa.select(counters.c.value)).scalar() == 2
    finally:
        metadata.drop_all(engine)
        engine.dispose()
