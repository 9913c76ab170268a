"""`ledger.sums`: SQL sums of 64-bit amounts that stay exact past 64 bits (SQLite)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, MetaData, Table, create_engine, insert, select

from ledger.sums import exact_total, split_total

_metadata = MetaData()
_amounts = Table("amounts", _metadata, Column("amount", BigInteger))
_engine = create_engine("sqlite://")
_metadata.create_all(_engine)
BIG = 2**63 - 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=-BIG, max_value=BIG), max_size=40))
def test_the_split_sum_is_the_exact_sum_of_either_sign(values: list[int]) -> None:
    with _engine.begin() as conn:
        conn.execute(_amounts.delete())
        if values:
            conn.execute(insert(_amounts), [{"amount": v} for v in values])
        row = conn.execute(select(*split_total(_amounts.c.amount))).one()
    assert exact_total(*row) == sum(values)


def test_many_large_amounts_pass_64_bits_exactly() -> None:
    values = [BIG] * 30
    with _engine.begin() as conn:
        conn.execute(_amounts.delete())
        conn.execute(insert(_amounts), [{"amount": v} for v in values])
        row = conn.execute(select(*split_total(_amounts.c.amount))).one()
    assert exact_total(*row) == 30 * BIG
