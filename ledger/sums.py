"""Exact sums of amount columns in SQL, on both databases, however many rows they cover.

SQLite's SUM fails past 64 bits ("integer overflow") and PostgreSQL's fits numeric only as
long as the value stays a bigint where it is stored: a day's turnover, or every posting of
a currency, can pass 2**63 minor units where no single amount or balance does. Each value
is summed as two parts, above and below `SPLIT` (both databases truncate integer division
toward zero and give the remainder the dividend's sign, so the parts add up to it), each
sum far from 64 bits for any number of rows; `exact_total` puts them together in Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

SPLIT = 10**9


def split_total(value: Any) -> tuple[Any, Any]:
    """The two SQL sums (0 over no rows) that `exact_total` puts together."""
    return func.coalesce(func.sum(value // SPLIT), 0), func.coalesce(func.sum(value % SPLIT), 0)


def exact_total(high: Any, low: Any) -> int:
    return int(high) * SPLIT + int(low)
