"""What a batch waiting for signatures announces per business day (SPEC §14): its EUR
transactions by requested date, a closed day counted on the next business day; other
currencies and unreadable amounts or dates count nothing."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from gateway import announcements


def test_eur_per_business_day_of_a_waiting_batch() -> None:
    saturday, monday = dt.date(2026, 11, 14), dt.date(2026, 11, 16)
    holiday, thursday = dt.date(2026, 11, 18), dt.date(2026, 11, 19)
    eur: Counter[dt.date] = Counter()
    announcements.add_awaiting(
        eur,
        [saturday, monday, monday, holiday, None, monday],
        ["EUR", "EUR", "USD", "EUR", "EUR", "EUR"],
        [100, 20, 5000, 7, 9, None],
    )
    assert eur == {monday: 120, thursday: 7}
