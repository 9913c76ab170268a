"""Reading the ECB's rate files: each form it publishes, and each bad file refused whole
with one line (SPEC §13: a missing currency, a negative or zero rate, a future date, a
truncated zip, an XML bomb — it is XML from outside)."""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal

import pytest

from gateway.rates import ecb, target
from tests.rates_fixtures import BILLION_LAUGHS, ecb_xml, zipped

TODAY = dt.date(2024, 11, 20)
DAY = dt.date(2024, 11, 18)
# The ECB's rates of 18 November 2024 for the treasury's currencies, and two others.
RATES = {
    "USD": "1.0552", "JPY": "163.74", "CZK": "25.282", "DKK": "7.4591", "GBP": "0.8356",
    "HUF": "408.7", "PLN": "4.3278", "SEK": "11.6", "CHF": "0.9364", "NOK": "11.717",
    "AUD": "1.6352", "CAD": "1.4873", "IDR": "16732.73", "ZAR": "19.0768",
}  # fmt: skip


def day(**changes: str | None) -> dict[dt.date, dict[str, str]]:
    rates = dict(RATES)
    for code, value in changes.items():
        if value is None:
            del rates[code]
        else:
            rates[code] = value
    return {DAY: rates}


def csv_hist(days: dict[dt.date, dict[str, str]]) -> bytes:
    codes = list(RATES)
    lines = ["Date," + ",".join(codes) + ","]
    for d in sorted(days, reverse=True):
        lines.append(f"{d}," + ",".join(days[d].get(c, "N/A") for c in codes) + ",")
    return ("\n".join(lines) + "\n").encode()


def csv_daily() -> bytes:
    codes = list(RATES)
    return (
        "Date, " + ", ".join(codes) + ", \n"
        "18 November 2024, " + ", ".join(RATES[c] for c in codes) + ", \n"
    ).encode()


def ok(data: bytes) -> ecb.RateFile:
    found = ecb.parse(data, today=TODAY)
    assert isinstance(found, ecb.RateFile), found
    return found


def refused(data: bytes, today: dt.date = TODAY) -> str:
    found = ecb.parse(data, today=today)
    assert isinstance(found, ecb.Refused), found
    assert "\n" not in found.problem
    return found.problem


@pytest.mark.parametrize(
    ("data", "form"),
    [
        (ecb_xml(day()), "xml"),
        (csv_hist(day()), "csv"),
        (csv_daily(), "csv"),
        (zipped("eurofxref-daily.xml", ecb_xml(day())), "zip/xml"),
        (zipped("eurofxref.csv", csv_daily()), "zip/csv"),
    ],
)
def test_every_form_the_ecb_publishes_is_read(data: bytes, form: str) -> None:
    """XML, CSV (history and daily) and their zips give the same rates: the treasury's
    twelve ECB currencies, exactly as written; IDR and ZAR are passed over."""
    found = ok(data)
    assert found.form == form
    assert found.days == {DAY: {code: Decimal(RATES[code]) for code in found.days[DAY]}}
    assert set(found.days[DAY]) == {
        "USD", "JPY", "CZK", "DKK", "GBP", "HUF", "PLN", "SEK", "CHF", "NOK", "AUD", "CAD",
    }  # fmt: skip
    assert found.days[DAY]["SEK"] == Decimal("11.6")


def test_several_days_of_xml() -> None:
    days = {DAY: dict(RATES), DAY - dt.timedelta(days=3): {**RATES, "USD": "1.0540"}}
    found = ok(ecb_xml(days))
    assert found.first == DAY - dt.timedelta(days=3) and found.last == DAY
    assert found.days[found.first]["USD"] == Decimal("1.0540")


def _truncated_zip() -> bytes:
    whole = zipped("eurofxref-hist.xml", ecb_xml(day()) * 1)
    return whole[: len(whole) // 2]


def _two_member_zip() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.xml", ecb_xml(day()))
        archive.writestr("b.xml", ecb_xml(day()))
    return buffer.getvalue()


def _damaged_zip(method: int) -> bytes:
    """A zip whose one member, compressed by `method`, is damaged inside: bzip2 says so
    with an OSError without errno, LZMA with an LZMAError (the rates drop let either
    through: the leader's pass failed on every restart, a reviewer)."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("eurofxref.csv", csv_hist(day()) * 3)
    data = bytearray(buffer.getvalue())
    start = 30 + len("eurofxref.csv")
    for at in range(start + 12, start + 30):
        data[at] ^= 0x5A
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_damaged_zip(zipfile.ZIP_BZIP2), "the zip is truncated or damaged"),
        (_damaged_zip(zipfile.ZIP_LZMA), "the zip is truncated or damaged"),
        (ecb_xml(day(USD=None)), "2024-11-18 has no USD rate"),
        (csv_hist(day(JPY=None)), "2024-11-18 has no JPY rate"),
        (ecb_xml(day(GBP="-0.8356")), "GBP of 2024-11-18: rate must be positive"),
        (ecb_xml(day(CHF="0")), "CHF of 2024-11-18: rate must be positive"),
        (ecb_xml(day(CHF="0.0000")), "rate must be positive"),
        (ecb_xml(day(USD="1,0552")), "USD of 2024-11-18: rate '1,0552' is not a number"),
        (ecb_xml(day(USD="1e3")), "not a number"),
        (ecb_xml(day(USD="1_000")), "not a number"),
        (ecb_xml(day(USD="Infinity")), "not a number"),
        (ecb_xml(day(USD="1.00000000001")), "more than 10 decimals"),
        (_truncated_zip(), "the zip is truncated or damaged"),
        (_two_member_zip(), "the zip must hold one file, it holds 2"),
        (BILLION_LAUGHS, "a DTD (DOCTYPE) is not allowed"),
        (ecb_xml(day(), prolog='<!DOCTYPE x SYSTEM "http://example.org/x.dtd">'), "DTD"),
        (ecb_xml(day()).replace(b"UTF-8", b"ISO-8859-1"), "encoding must be UTF-8"),
        (ecb_xml(day())[:-40], "not well-formed"),
        (ecb_xml(day()).replace(b"rate='4.3278'", b"rate='&x;'"), "not well-formed"),
        (b"<html><body>Service unavailable</body></html>", "not an ECB rate file"),
        (b"%PDF-1.4", "not an ECB rate file"),
        (b"", "empty"),
        (ecb_xml({}), "holds no rates"),
        (ecb_xml(day()).replace(b"time='2024-11-18'", b"time='2024-11-31'"), "not a date"),
        (ecb_xml(day()) .replace(b"<Cube currency='USD' rate='1.0552'/>",
                                 b"<Cube currency='USD' rate='1.0552'/>" * 2),
         "USD appears twice"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_whole_with_one_line(data: bytes, words: str) -> None:
    """Each bad file is refused with a line naming the problem: nothing of it is kept."""
    assert words in refused(data)


def test_a_date_in_the_future_is_refused() -> None:
    """Rates dated after today (in Riga) cannot have been published: refused."""
    data = ecb_xml(day())
    assert refused(data, today=DAY - dt.timedelta(days=1)) == (
        "rates dated 2024-11-18 are in the future (today is 2024-11-17)"
    )
    assert isinstance(ecb.parse(data, today=DAY), ecb.RateFile)  # today's rate is fine


def test_a_missing_day_among_many_refuses_the_whole_file() -> None:
    """A history whose one day lacks a currency is refused as a whole (all or nothing)."""
    calendar_days = (DAY - dt.timedelta(days=n) for n in range(0, 30))
    days = {d: dict(RATES) for d in calendar_days if target.is_publishing_day(d)}
    days[DAY - dt.timedelta(days=12)].pop("NOK")
    assert refused(ecb_xml(days)) == "2024-11-06 has no NOK rate"


def test_a_day_the_ecb_never_publishes_refuses_the_whole_file() -> None:
    """Rates dated on a Saturday or a TARGET closing day (1 May) are refused with the
    date and why, by the calendar `rates set --date` uses (SPEC §13), the good days too."""
    friday = dt.date(2024, 11, 15)
    saturday = friday + dt.timedelta(days=1)
    assert refused(ecb_xml({friday: dict(RATES), saturday: dict(RATES)})) == (
        "2024-11-16 is not an ECB business day: the ECB publishes no rates dated on it"
    )
    labour_day = dt.date(2024, 5, 1)  # a Wednesday
    assert "2024-05-01 is not an ECB business day" in refused(ecb_xml({labour_day: dict(RATES)}))


def test_a_zip_bigger_inside_than_allowed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip expanding past the size limit is refused before it is expanded."""
    data = zipped("eurofxref.xml", ecb_xml(day()) + b"<!--" + b" " * 100_000 + b"-->")
    monkeypatch.setattr(ecb, "rate_file_bytes_max", 50_000)
    assert "larger than 50000 bytes" in refused(data)


def test_deep_nesting_is_refused_without_huge_tree() -> None:
    """lxml's default limits (huge_tree off) stop an absurdly deep document."""
    deep = b"<a>" * 1000 + b"</a>" * 1000  # lxml allows 256 levels, 2048 with huge_tree
    data = ecb_xml(day()).replace(b"<gesmes:subject>", b"<gesmes:subject>" + deep)
    assert "not well-formed" in refused(data)


@pytest.mark.parametrize(
    ("execution_day", "rate_date"),
    [
        (dt.date(2024, 11, 19), dt.date(2024, 11, 18)),  # Tuesday: Monday's rates
        (dt.date(2024, 11, 18), dt.date(2024, 11, 15)),  # Monday: Friday's
        (dt.date(2024, 11, 17), dt.date(2024, 11, 15)),  # Sunday: Friday's
        (dt.date(2024, 4, 2), dt.date(2024, 3, 28)),  # after Good Friday and Easter Monday
        (dt.date(2027, 1, 4), dt.date(2026, 12, 31)),  # New Year's Day closed
        (dt.date(2026, 12, 28), dt.date(2026, 12, 24)),  # 25, 26 December closed
        (dt.date(2024, 11, 19), dt.date(2024, 11, 18)),  # 18 November: Latvia closed, ECB not
    ],
)
def test_the_rates_valid_on_a_day_are_the_last_ecb_days(
    execution_day: dt.date, rate_date: dt.date
) -> None:
    """The rate valid on an execution day is dated the last TARGET day before it."""
    assert target.rate_date_for(execution_day) == rate_date
