"""The TARGET closing days (the days the ECB publishes no rates) kept in the spool beside
the Latvian holidays (`gateway.holiday_cache`), so that a short-lived command that
converts a payment does not import the `holidays` package either."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import holidays

from gateway import holiday_cache
from gateway.rates import target
from ledger import calendar


def test_target_years_come_back_and_spare_the_import(tmp_path: Path) -> None:
    calendar._holidays.clear()
    target._closing_days.clear()
    assert target.rate_date_for(dt.date(2026, 12, 28)) == dt.date(2026, 12, 24)  # 25, 26 shut
    assert calendar.is_business_day(dt.date(2026, 12, 28))
    holiday_cache.save(tmp_path)
    target._closing_days.clear()
    holiday_cache.load(tmp_path)
    expected = frozenset(holidays.financial_holidays("XECB", years=2026))
    assert target.known_years() == {2026: expected}
    script = (
        "import sys, datetime as dt\n"
        "from pathlib import Path\n"
        "from gateway import holiday_cache\n"
        "from gateway.rates import target\n"
        f"holiday_cache.load(Path({str(tmp_path)!r}))\n"
        "assert target.rate_date_for(dt.date(2026, 12, 28)) == dt.date(2026, 12, 24)\n"
        "print('holidays' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
