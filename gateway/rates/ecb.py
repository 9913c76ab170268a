"""Reading the ECB's reference-rate files, which come from outside and are not trusted.

Accepted: the XML the ECB publishes (`eurofxref-daily.xml`, `eurofxref-hist.xml`,
`eurofxref-hist-90d.xml`: a gesmes envelope of `Cube time=…` days holding
`Cube currency=… rate=…`), the CSV it publishes (`eurofxref.csv`, daily, dates as
`30 October 2026`; `eurofxref-hist.csv`, ISO dates and `N/A`), and a zip holding one
such file (the ECB's own `eurofxref.zip` and `eurofxref-hist.zip` hold the CSV).
Which of these a file is, its bytes say, not its name.

The XML gets the pain.001 reader's hostile-input rules: a size limit, UTF-8 only, no
DTD (so no entity but XML's five is ever declared: no billion laughs), no network,
lxml's `huge_tree` off (depth and text-node limits), streamed day by day. A zip is
bounded too: one member, not encrypted, its content read only up to the size limit
whatever its header claims.

A file is taken whole or not at all: `read` returns the rates of every day in it, or
one `Refused` line saying what is wrong. Only the treasury's ECB-quoted currencies
(`fx.ECB_QUOTED`) are kept, each day must carry every one of them, and each day must
be one the ECB publishes on (a TARGET business day, `target.is_publishing_day`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from gateway import fx
from gateway.inbound import safe_xml
from gateway.rates import target

rate_file_bytes_max = 64 << 20  # the whole history as XML is ~8 MB today
days_per_file_max = 20_000  # the history since 1999 has ~7,100
currencies_per_day_max = 100  # the ECB quotes ~30
feed_bytes = 1 << 16
prolog_bytes = 4096

GESMES = "http://www.gesmes.org/xml/2002-08-01"
EUROFXREF = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
_ENVELOPE = f"{{{GESMES}}}Envelope"
_CUBE = f"{{{EUROFXREF}}}Cube"
_CODE = re.compile(r"^[A-Z]{3}$")
_WANTED = frozenset(fx.ECB_QUOTED)
_NUMBER = re.compile(r"^[+-]?[0-9]{1,20}(?:\.[0-9]{1,20})?$")  # no exponent, no `_`
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january", "february", "march", "april", "may", "june", "july",
            "august", "september", "october", "november", "december",
        ),
        start=1,
    )
}  # fmt: skip

Day = dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class RateFile:
    """What a valid file holds: for each day, every treasury currency the ECB quotes."""

    form: str  # "xml", "csv", "zip/xml", "zip/csv"
    days: dict[dt.date, Day]

    @property
    def first(self) -> dt.date:
        return min(self.days)

    @property
    def last(self) -> dt.date:
        return max(self.days)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a file is refused, in one line; nothing of it is imported."""

    problem: str


class _Bad(Exception):
    """A problem found deep in reading; `read` turns it into `Refused`."""


def read(path: Path, *, today: dt.date) -> RateFile | Refused:
    """The rates in the file at `path`, or why it is refused. `today` is the date in
    the treasury's time zone: a rate dated after it is refused."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise _Bad("the file is empty")
        if size > rate_file_bytes_max:
            raise _Bad(f"the file is larger than {rate_file_bytes_max} bytes")
        with open(path, "rb") as handle:
            data = handle.read(rate_file_bytes_max + 1)
    except _Bad as bad:
        return Refused(str(bad))
    return parse(data, today=today)


def parse(data: bytes, *, today: dt.date) -> RateFile | Refused:
    """The rates in a file's bytes, or why it is refused (see `read`)."""
    try:
        if not data:
            raise _Bad("the file is empty")
        if len(data) > rate_file_bytes_max:
            raise _Bad(f"the file is larger than {rate_file_bytes_max} bytes")
        form, days = _read_bytes(data)
        return _checked(form, days, today)
    except _Bad as bad:
        return Refused(str(bad))


def _read_bytes(data: bytes) -> tuple[str, dict[dt.date, dict[str, str]]]:
    if data.startswith(b"PK"):
        content = _unzip(data)
        form, days = _read_bytes_plain(content)
        return f"zip/{form}", days
    return _read_bytes_plain(data)


def _read_bytes_plain(data: bytes) -> tuple[str, dict[dt.date, dict[str, str]]]:
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"<"):
        return "xml", _read_xml(data)
    if start[:4].lower() == b"date":
        return "csv", _read_csv(data)
    raise _Bad("not an ECB rate file (XML, CSV or a zip of one)")


# -- zip ---------------------------------------------------------------------------------


def _unzip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise _Bad(f"the zip must hold one file, it holds {len(members)}")
            member = members[0]
            if member.flag_bits & 0x1:
                raise _Bad("the zip is encrypted")
            if member.file_size > rate_file_bytes_max:
                raise _Bad(f"the file in the zip is larger than {rate_file_bytes_max} bytes")
            chunks = []
            total = 0
            with archive.open(member) as handle:
                while chunk := handle.read(feed_bytes):
                    total += len(chunk)
                    # zipfile itself stops at the size the header gives and checks the
                    # CRC; counting here keeps the bound from depending on that.
                    if total > rate_file_bytes_max:
                        raise _Bad(
                            f"the file in the zip is larger than {rate_file_bytes_max} bytes"
                        )
                    chunks.append(chunk)
            return b"".join(chunks)
    # What zipfile and its decompressors raise for damaged data: bzip2 an OSError without
    # errno, LZMA its own error (the bytes are in memory: no OSError here is the disk's).
    except (
        zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, NotImplementedError,
        ValueError,
    ) as exc:  # fmt: skip
        raise _Bad(f"the zip is truncated or damaged ({exc})") from exc


# -- XML ---------------------------------------------------------------------------------

def check_prolog(head: bytes) -> str | None:
    """What is wrong with the start of an XML file from outside (not UTF-8, a DTD), or
    None: the rules every inbound message obeys (`safe_xml`)."""
    if (problem := safe_xml.encoding_problem(head)) is not None:
        return problem
    if safe_xml.has_doctype(head):
        return "a DTD (DOCTYPE) is not allowed"
    return None


def _read_xml(data: bytes) -> dict[dt.date, dict[str, str]]:
    problem = check_prolog(data[:prolog_bytes])
    if problem is not None:
        raise _Bad(problem)
    parser = safe_xml.looking_parser(("start", "end"))
    days: dict[dt.date, dict[str, str]] = {}
    seen_root = False
    try:
        for offset in range(0, len(data), feed_bytes):
            parser.feed(data[offset : offset + feed_bytes])
            for event, elem in parser.read_events():
                if not seen_root:
                    _check_root(elem)
                    seen_root = True
                if event == "end" and elem.tag == _CUBE and elem.get("time") is not None:
                    _add_day(days, elem)
                    _forget(elem)
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise _Bad(f"not well-formed XML: {exc}") from exc
    if root is None or root.tag != _ENVELOPE:
        raise _Bad("not well-formed XML: the document ends early")
    return days


def _check_root(elem: Any) -> None:
    if safe_xml.declares_dtd(elem):
        raise _Bad("a DTD (DOCTYPE) is not allowed")
    if elem.tag != _ENVELOPE:
        raise _Bad(f"not an ECB rate file: the root element is {elem.tag!r}")


def _add_day(days: dict[dt.date, dict[str, str]], cube: Any) -> None:
    day = _iso_date(cube.get("time"))
    rates: dict[str, str] = {}
    for child in cube:
        if child.tag != _CUBE:
            raise _Bad(f"{day}: unexpected element {child.tag!r}")
        code, rate = child.get("currency"), child.get("rate")
        if code is None or rate is None:
            raise _Bad(f"{day}: a Cube without currency and rate")
        _put_rate(rates, day, code.strip(), rate.strip())
    _put_day(days, day, {code: rates[code] for code in _WANTED.intersection(rates)})


def _forget(elem: Any) -> None:
    """Free a day already read: the tree would otherwise hold the whole history."""
    elem.clear()
    parent = elem.getparent()
    while parent is not None and elem.getprevious() is not None:
        del parent[0]


# -- CSV ---------------------------------------------------------------------------------


def _read_csv(data: bytes) -> dict[dt.date, dict[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Bad(f"the CSV is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    rows: Iterator[list[str]] = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration as exc:  # pragma: no cover - data is not empty here
        raise _Bad("the CSV has no header") from exc
    except csv.Error as exc:
        raise _Bad(f"the CSV cannot be read: {exc}") from exc
    while header and not header[-1]:
        header.pop()  # the ECB ends every line with a comma
    if not header or header[0].lower() != "date" or len(header) > currencies_per_day_max + 1:
        raise _Bad("the CSV header must be Date followed by currency codes")
    codes = header[1:]
    for code in codes:
        if not _CODE.match(code):
            raise _Bad(f"the CSV header names {code[:10]!r}, not a currency code")
    if len(set(codes)) != len(codes):
        raise _Bad("the CSV header names a currency twice")
    # Only the treasury's currencies are read; the ECB's others are passed over.
    wanted = [(index, code) for index, code in enumerate(codes, start=1) if code in _WANTED]
    days: dict[dt.date, dict[str, str]] = {}
    try:
        for line_no, row in enumerate(rows, start=2):
            if len(row) > len(header) and not any(f.strip() for f in row[len(header) :]):
                row = row[: len(header)]  # the ECB ends every line with a comma
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise _Bad(f"line {line_no}: {len(row)} fields, the header names {len(header)}")
            day = _csv_date(row[0])
            rates: dict[str, str] = {}
            for index, code in wanted:
                value = row[index].strip()
                if value and value != "N/A":
                    rates[code] = value
            _put_day(days, day, rates)
    except csv.Error as exc:
        raise _Bad(f"the CSV cannot be read: {exc}") from exc
    return days


def _csv_date(text: str) -> dt.date:
    """`2026-10-30` (history) or `30 October 2026` (the daily file)."""
    parts = text.split()
    if len(parts) == 3 and parts[1].lower() in _MONTHS and parts[0].isdigit():
        try:
            return dt.date(int(parts[2]), _MONTHS[parts[1].lower()], int(parts[0]))
        except ValueError as exc:
            raise _Bad(f"impossible date {text!r}") from exc
    return _iso_date(text)


# -- both forms ----------------------------------------------------------------------------


def _iso_date(text: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError as exc:
        raise _Bad(f"not a date: {text!r}") from exc


def _put_rate(rates: dict[str, str], day: dt.date, code: str, rate: str) -> None:
    if not _CODE.match(code):
        raise _Bad(f"{day}: not a currency code: {code[:10]!r}")
    if code in rates:
        raise _Bad(f"{day}: {code} appears twice")
    if len(rates) >= currencies_per_day_max:
        raise _Bad(f"{day}: more than {currencies_per_day_max} currencies")
    rates[code] = rate


def _put_day(days: dict[dt.date, dict[str, str]], day: dt.date, rates: dict[str, str]) -> None:
    if day in days:
        raise _Bad(f"{day} appears twice")
    if len(days) >= days_per_file_max:
        raise _Bad(f"more than {days_per_file_max} days in one file")
    days[day] = rates


def _checked(form: str, raw: dict[dt.date, dict[str, str]], today: dt.date) -> RateFile:
    """Only the treasury's ECB currencies, each present, each a valid positive rate, on
    days the ECB publishes (a Saturday's rates would be read as Monday's, SPEC §13)."""
    if not raw:
        raise _Bad("the file holds no rates")
    latest = max(raw)
    if latest > today:
        raise _Bad(f"rates dated {latest} are in the future (today is {today})")
    days: dict[dt.date, Day] = {}
    for day in sorted(raw):
        if not target.is_publishing_day(day):  # the calendar `rates set` checks its --date by
            raise _Bad(f"{day} is not an ECB business day: the ECB publishes no rates dated on it")
        rates = raw[day]
        kept: Day = {}
        for code in fx.ECB_QUOTED:
            text = rates.get(code)
            if text is None:
                raise _Bad(f"{day} has no {code} rate")
            kept[code] = parse_rate(text, f"{code} of {day}")
        days[day] = kept
    return RateFile(form, days)


def parse_rate(text: str, what: str) -> Decimal:
    """A quote from its text, or `_Bad` naming `what` and the problem."""
    if not _NUMBER.match(text):
        raise _Bad(f"{what}: rate {text[:32]!r} is not a number")
    try:
        rate = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise _Bad(f"{what}: rate {text!r} is not a number") from exc
    problem = fx.rate_problem(rate)
    if problem is not None:
        raise _Bad(f"{what}: {problem}")
    return rate


def rate_from_text(text: str, what: str) -> Decimal | Refused:
    """A quote typed by hand (`rates set --rate`), or why it cannot be one."""
    try:
        return parse_rate(text.strip(), what)
    except _Bad as bad:
        return Refused(str(bad))
