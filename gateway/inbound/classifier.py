"""The budget classifier (SPEC §12): which codes exist, of which kind, and when.

The file is CSV, `;`-separated, with the header `code;name;kind;valid_from;valid_until`
(`valid_until` empty: still valid). It is read once at start: a byte-order mark and
Windows line ends are accepted; anything else wrong stops the start with one line
naming the row and the problem (`ClassifierError`). A code may appear on several rows
when its validity periods do not overlap (a code renamed from a date on).

`parse` is pure (text in, value out); the settings read the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

COLUMNS = ("code", "name", "kind", "valid_from", "valid_until")
rows_max = 20_000  # a real classifier has a few thousand codes
name_chars_max = 200
# Cd is Max10Text; a code is compared as written, so only plain characters are taken:
# a statement's AddtlTxInf ("EKK 2221 120.00; …") must read back unambiguously.
CODE = re.compile(r"[0-9A-Za-z.]{1,10}")


class Kind(StrEnum):
    EXPENSE = "expense"
    REVENUE = "revenue"
    FINANCING = "financing"


class ClassifierError(ValueError):
    """A classifier file that cannot be used: `row` (1 = the header) and the problem."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(f"row {row}: {problem}")
        self.row = row
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    kind: Kind
    valid_from: dt.date
    valid_until: dt.date | None  # inclusive; None: no end
    row: int

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


@dataclass(frozen=True, slots=True, eq=False)
class Classifier:
    """Every code's periods, earliest first. Compared and hashed as itself (the rules
    remember their verdicts per classifier, code and day)."""

    codes: Mapping[str, tuple[Code, ...]]

    def on(self, code: str, day: dt.date) -> Code | None:
        """The code as valid on `day`, if it is."""
        for period in self.codes.get(code, ()):
            if period.valid_on(day):
                return period
        return None

    def name(self, code: str, day: dt.date) -> str:
        """The code's name on `day` (or its latest name; empty for an unknown code)."""
        found = self.on(code, day)
        if found is not None:
            return found.name
        periods = self.codes.get(code, ())
        return periods[-1].name if periods else ""

    def why_not(self, code: str, day: dt.date) -> str:
        """Why `code` cannot be used on `day` (it is unknown or not valid then)."""
        periods = self.codes.get(code)
        if not periods:
            return f"{code} is not in the classifier"
        shown = ", ".join(
            f"{p.valid_from}–{p.valid_until if p.valid_until else ''}" for p in periods
        )
        return f"{code} is not valid on {day} (valid {shown})"


def _date(text: str, row: int, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ClassifierError(row, f"{column} {text!r} is not a date (YYYY-MM-DD)") from None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise ClassifierError(reader.line_num, f"not readable as CSV: {exc}") from None


def _code(row: int, fields: list[str]) -> Code:
    if len(fields) != len(COLUMNS):
        raise ClassifierError(row, f"{len(fields)} columns, expected {len(COLUMNS)}")
    code, name, kind, valid_from, valid_until = (f.strip() for f in fields)
    if not CODE.fullmatch(code):
        raise ClassifierError(row, f"code {code!r} is not 1–10 letters, digits or dots")
    if not name or len(name) > name_chars_max:
        raise ClassifierError(row, f"name of {code} is empty or longer than {name_chars_max}")
    if kind not in {k.value for k in Kind}:
        allowed = ", ".join(k.value for k in Kind)
        raise ClassifierError(row, f"unknown kind {kind!r} of {code} (expected {allowed})")
    start = _date(valid_from, row, "valid_from")
    end = _date(valid_until, row, "valid_until") if valid_until else None
    if end is not None and end < start:
        raise ClassifierError(row, f"{code} is valid until {end}, before it starts {start}")
    return Code(code, name, Kind(kind), start, end, row)


def _overlap(a: Code, b: Code) -> bool:
    a_end = a.valid_until or dt.date.max
    b_end = b.valid_until or dt.date.max
    return a.valid_from <= b_end and b.valid_from <= a_end


def parse(text: str) -> Classifier:
    """The classifier in `text`, or `ClassifierError` for its first bad row."""
    found: dict[str, list[Code]] = {}
    header_seen = False
    for row, fields in _rows(text):
        if not any(f.strip() for f in fields):
            continue  # blank lines
        if not header_seen:
            if tuple(f.strip().lower() for f in fields) != COLUMNS:
                raise ClassifierError(row, f"header must be {';'.join(COLUMNS)}")
            header_seen = True
            continue
        if row > rows_max:
            raise ClassifierError(row, f"more than {rows_max} rows")
        code = _code(row, fields)
        for earlier in found.get(code.code, ()):
            if earlier.valid_from == code.valid_from:
                raise ClassifierError(row, f"duplicate code {code.code} (also row {earlier.row})")
            if _overlap(earlier, code):
                raise ClassifierError(row, f"validity of {code.code} overlaps row {earlier.row}")
        found.setdefault(code.code, []).append(code)
    if not header_seen:
        raise ClassifierError(1, "the file is empty")
    if not found:
        raise ClassifierError(1, "a header and no code (every coded payment would be RR05)")
    return Classifier({c: tuple(sorted(p, key=lambda x: x.valid_from)) for c, p in found.items()})
