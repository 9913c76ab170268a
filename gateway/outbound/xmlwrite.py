"""Streaming XML for every message we write, element by element, as text.

Nothing here builds a tree. A report with a million transactions is written while
its iterable is consumed, so memory stays flat whatever the size. Text is made fit
for the XSD here, once: characters XML cannot carry are dropped, text is cut to the
element's maximum length, and an optional element whose text ends up empty is left
out (ISO text types have a minimum length of 1).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import BinaryIO

from ledger.currency import format_minor, is_supported

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Length limits of the ISO text types, in characters.
id_chars_max = 35  # Max35Text
name_chars_max = 140  # Max140Text
additional_info_chars_max = 105  # Max105Text (pain.002 AddtlInf)
remittance_chars_max = 140  # Max140Text (Ustrd)
info_parts_max = 4  # AddtlInf / Ustrd repetitions we write before truncating

BIC_PATTERN = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?")
IBAN_PATTERN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ELLIPSIS = "…"


def clean(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters, lone surrogates)."""
    return _NOT_XML_CHAR.sub("", text).strip()


def cut(text: str | None, chars_max: int) -> str | None:
    """The text cleaned and cut to `chars_max` characters; None when nothing is left."""
    if text is None:
        return None
    # Fast path for the usual short, printable, trimmed text: this runs per element.
    if len(text) <= chars_max and text.isprintable() and text[:1] != " " and text[-1:] != " ":
        return text or None
    return clean(text)[:chars_max].rstrip() or None


def wrap(text: str | None, chars_max: int, parts_max: int = info_parts_max) -> list[str]:
    """Split text over repeated elements at word boundaries; an ellipsis marks a cut."""
    if text is None:
        return []
    # Fast path, as in `cut`: a short, printable, trimmed text is one part as it is.
    if len(text) <= chars_max and text.isprintable() and text[:1] != " " and text[-1:] != " ":
        return [text] if text else []
    parts = textwrap.wrap(clean(text), chars_max, break_on_hyphens=False)
    if len(parts) > parts_max:
        parts = parts[:parts_max]
        parts[-1] = parts[-1][: chars_max - 1].rstrip() + _ELLIPSIS
    return parts


def iso_date(value: date) -> str:
    return value.isoformat()


def iso_datetime(value: datetime) -> str:
    """ISODateTime with its UTC offset; a naive datetime is a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime without time zone: {value!r}")
    return value.isoformat(timespec="seconds")


def valid_iban(iban: str | None) -> str | None:
    """The IBAN when it fits the XSD pattern (a rejected one may not); otherwise None."""
    return iban if iban is not None and IBAN_PATTERN.fullmatch(iban) else None


def valid_bic(bic: str | None) -> str | None:
    return bic if bic is not None and BIC_PATTERN.fullmatch(bic) else None


def escape(text: str) -> str:
    """Text content and attribute values: the three (four) characters XML reserves."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:  # raw, a reader would take it for a line feed (XML end-of-line handling)
        text = text.replace("\r", "&#13;")
    return text


def safe(text: str) -> str:
    """Text fit for XML: characters XML cannot carry dropped, markup escaped."""
    # Every character XML cannot carry is unprintable, so printable text skips the search.
    if not text.isprintable() and _NOT_XML_CHAR.search(text):
        text = _NOT_XML_CHAR.sub("", text)
    return escape(text)


class _Open:
    """`with w.element(tag):` — writes the start tag now and the end tag on exit."""

    __slots__ = ("_tag", "_w")

    def __init__(self, w: Writer, tag: str) -> None:
        self._w = w
        self._tag = tag

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._w.raw(f"</{self._tag}>")


class Writer:
    """Writes the elements of one ISO 20022 document as text into a binary stream.

    lxml's incremental writer costs about 3 µs per element from Python, which is
    most of the time of a 100,000-transaction report; this writer emits the same
    markup from f-strings into a buffer flushed every `buffer_parts_max` pieces.
    Every text and attribute passes through `_safe` (characters XML cannot carry
    are dropped, markup characters escaped), so well-formedness does not depend
    on callers; every message we write is validated against its XSD in the tests.
    """

    __slots__ = ("_out", "_parts")
    buffer_parts_max = 8192

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._parts: list[str] = []

    def raw(self, markup: str) -> None:
        """Append markup that is already well-formed and escaped."""
        parts = self._parts
        parts.append(markup)
        if len(parts) >= self.buffer_parts_max:
            self.flush()

    def raw_bytes(self, markup: bytes) -> None:
        """Append UTF-8 markup that is already well-formed and escaped."""
        self.flush()
        self._out.write(markup)

    def flush(self) -> None:
        if self._parts:
            self._out.write("".join(self._parts).encode("utf-8"))
            self._parts.clear()

    def element(
        self, tag: str, attrib: Mapping[str, str] | None = None
    ) -> AbstractContextManager[None]:
        """Open an element; children are written inside the `with` block."""
        self.raw(f"<{tag}{_attributes(attrib)}>")
        return _Open(self, tag)

    def leaf(self, tag: str, text: str, attrib: Mapping[str, str] | None = None) -> None:
        self.raw(f"<{tag}{_attributes(attrib)}>{safe(text)}</{tag}>")

    def optional(self, tag: str, text: str | None) -> None:
        """A leaf only when there is text."""
        if text:
            self.leaf(tag, text)

    def text(self, tag: str, text: str | None, chars_max: int) -> None:
        """An optional text leaf, cleaned and cut to its XSD length."""
        self.optional(tag, cut(text, chars_max))

    def amount(self, tag: str, minor: int, currency: str) -> None:
        """ActiveOrHistoricCurrencyAndAmount: never negative (direction is CdtDbtInd)."""
        if minor < 0:
            raise ValueError(f"negative amount for {tag}: {minor}")
        self.leaf(tag, format_minor(minor, currency), {"Ccy": currency})

    def date(self, tag: str, value: date | None) -> None:
        if value is not None:
            self.leaf(tag, iso_date(value))

    def datetime(self, tag: str, value: datetime | None) -> None:
        if value is not None:
            self.leaf(tag, iso_datetime(value))


def _attributes(attrib: Mapping[str, str] | None) -> str:
    if not attrib:
        return ""
    return "".join(f' {name}="{safe(value)}"' for name, value in attrib.items())


@contextmanager
def document(out: BinaryIO, message: str, root: str) -> Iterator[Writer]:
    """`<?xml …?><Document xmlns="urn:…:<message>"><root>…</root></Document>` into `out`."""
    namespace = NAMESPACE_PREFIX + message
    out.write(DECLARATION)
    writer = Writer(out)
    writer.raw(f'<Document xmlns="{namespace}"><{root}>')
    yield writer
    writer.raw(f"</{root}></Document>")
    writer.flush()


# -- building blocks shared by several messages -----------------------------------------


def can_format(minor: int | None, currency: str | None) -> bool:
    """Whether an amount from a (possibly rejected) instruction can be written at all."""
    return minor is not None and minor >= 0 and currency is not None and is_supported(currency)


def agent(w: Writer, tag: str, bic: str | None) -> None:
    """BranchAndFinancialInstitutionIdentification4 by BIC; left out when no valid BIC."""
    if (checked := valid_bic(bic)) is not None:
        with w.element(tag), w.element("FinInstnId"):
            w.leaf("BIC", checked)


def party(w: Writer, tag: str, name: str | None) -> None:
    """PartyIdentification32 by name; left out when there is no name."""
    if (text := cut(name, name_chars_max)) is not None:
        with w.element(tag):
            w.leaf("Nm", text)


def iban_account(w: Writer, tag: str, iban: str | None) -> None:
    """CashAccount16 by IBAN; left out when the IBAN does not fit the pattern."""
    if (checked := valid_iban(iban)) is not None:
        with w.element(tag), w.element("Id"):
            w.leaf("IBAN", checked)
