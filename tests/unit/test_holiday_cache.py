"""Latvian holidays kept in the spool between processes (`gateway.holiday_cache`)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import holidays
import pytest

from gateway import holiday_cache
from ledger import calendar

CHRISTMAS = dt.date(2026, 12, 25)


@pytest.fixture(autouse=True)
def _fresh_calendar() -> None:
    calendar._holidays.clear()


def test_years_come_back_as_holidays_gives_them(tmp_path: Path) -> None:
    assert not calendar.is_business_day(CHRISTMAS)  # worked out by `holidays`
    holiday_cache.save(tmp_path)
    calendar._holidays.clear()
    holiday_cache.load(tmp_path)
    expected = frozenset(holidays.country_holidays("LV", years=2026))
    assert calendar.known_years() == {2026: expected}


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    calendar.is_business_day(CHRISTMAS)
    holiday_cache.save(tmp_path)
    [path] = (tmp_path / "cache").iterdir()
    for damage in (b"{not json", b'{"years": {"2026": ["2026-13-01"]}}', b"[]", b"\x00" * 10):
        path.write_bytes(damage)
        calendar._holidays.clear()
        holiday_cache.load(tmp_path)
        assert calendar.known_years() == {}
        assert not calendar.is_business_day(CHRISTMAS)  # worked out again


def test_a_process_with_the_cache_does_not_import_holidays(tmp_path: Path) -> None:
    calendar.is_business_day(CHRISTMAS)
    holiday_cache.save(tmp_path)
    script = (
        "import sys, datetime as dt\n"
        "from pathlib import Path\n"
        "from gateway import holiday_cache\n"
        "from ledger import calendar\n"
        f"holiday_cache.load(Path({str(tmp_path)!r}))\n"
        "assert not calendar.is_business_day(dt.date(2026, 12, 25))\n"
        "assert calendar.is_business_day(dt.date(2026, 12, 1))\n"
        "print('holidays' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
