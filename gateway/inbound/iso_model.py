"""A parsed ISO 20022 document checked against its pyiso20022 model as its XSD would be.

Where the official schema is not at hand (camt.060.001.03, camt.055.001.01; and at run
time for every request, since the gateway does not read `../shared`), the models of
the maintained `pyiso20022` package are the schema: they are generated from the
official XSDs and keep, per element, its order, occurrences and facets (length,
pattern, digits, enumerations, types). `pyiso20022` ships no XSD files, and binding a
document with xsdata alone checks neither order, nor occurrences, nor choices, so
`check` walks the tree against the model first, as the XSD would:

- children in sequence order, each within its minimum and maximum occurrences, and
  nothing the type does not declare (`xsi:schemaLocation` excepted, as in XSD);
- a type named `…Choice` holds exactly one of its alternatives (the ISO 20022 naming
  rule for choice components; the few unnamed choices of the 2009 messages are
  checked as optional sequences, i.e. more leniently than the XSD);
- text: lengths, patterns (anchored, as in XSD), enumerations, decimals with their
  digits and bounds, dates, date-times, times and booleans in their XSD lexical form;
- no text among child elements, no child elements in a simple value.

The tests hold this to the official XSD wherever one exists (camt.060.001.05,
camt.055.001.09, camt.029.001.10): every mutation of a valid sample gets the same
verdict from both. `bind` then hands the document to xsdata, which fills the model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from lxml import etree
from xsdata.models.datatype import XmlDate, XmlDateTime, XmlTime

T = TypeVar("T")
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_ALLOWED = {f"{{{XSI}}}schemaLocation", f"{{{XSI}}}noNamespaceSchemaLocation"}
_FACETS = (
    "min_length",
    "max_length",
    "pattern",
    "total_digits",
    "fraction_digits",
    "min_inclusive",
    "max_inclusive",
    "min_exclusive",
    "max_exclusive",
)


class _Invalid(Exception):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str  # the XML name (element or attribute)
    position: int
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    target: Any  # a model dataclass, an Enum, or a simple Python/xsdata type
    facets: dict[str, Any]
    model: type | None  # `target` when it is a model dataclass (a complex type)


@dataclasses.dataclass(frozen=True, slots=True)
class _Type:
    elements: dict[str, _Field]
    attributes: dict[str, _Field]
    text: _Field | None  # simple content (an amount's value)
    wildcard: _Field | None  # xs:any (SupplementaryDataEnvelope1)
    choice: bool


@cache
def _type(cls: type) -> _Type:
    module = __import__(cls.__module__, fromlist=["_"])
    hints = typing.get_type_hints(cls, vars(module))
    elements: dict[str, _Field] = {}
    attributes: dict[str, _Field] = {}
    text = wildcard = None
    for position, field in enumerate(dataclasses.fields(cls)):
        meta = field.metadata
        annotation = hints[field.name]
        many = typing.get_origin(annotation) is list
        if many:
            target = typing.get_args(annotation)[0]
        else:
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            target = options[0] if options else annotation
        kind = meta.get("type", "Text" if field.name == "value" else "Element")
        if many:
            low, high = int(meta.get("min_occurs", 0)), meta.get("max_occurs")
        else:
            # ISO uses xs:any only as the one required element of an envelope
            low, high = (1 if meta.get("required") or kind == "Wildcard" else 0), 1
        spec = _Field(
            name=meta.get("name", field.name),
            position=position,
            min_occurs=low,
            max_occurs=None if high is None else int(high),
            target=target,
            facets={k: meta[k] for k in _FACETS if k in meta},
            model=target if isinstance(target, type) and dataclasses.is_dataclass(target) else None,
        )
        if kind == "Attribute":
            attributes[spec.name] = spec
        elif kind == "Text":
            text = spec
        elif kind == "Wildcard":
            wildcard = spec
        else:
            elements[spec.name] = spec
    return _Type(elements, attributes, text, wildcard, cls.__name__.endswith("Choice"))


def check(root: etree._Element, document: type) -> str | None:
    """None when `root` (a `Document`) is valid against the model `document`; otherwise
    what is wrong and where, in English."""
    namespace = etree.QName(root).namespace or ""
    try:
        _element(root, _type(document), namespace, "Document")
    except _Invalid as exc:
        return str(exc)
    return None


def bind(root: etree._Element, document: type[T]) -> T | str:
    """The document as an instance of its model, or what is wrong with it."""
    problem = check(root, document)
    if problem is not None:
        return problem
    # xsdata's parser loads only here: every `scan` imports this module (the pull side
    # is routed in the same pass), few files are requests.
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig

    parser = XmlParser(
        config=ParserConfig(fail_on_unknown_properties=True, fail_on_converter_warnings=True)
    )
    try:
        return parser.parse(root, document)
    except Exception as exc:  # xsdata's errors share no base of their own
        return f"not valid against the model: {exc}"


def _element(elem: etree._Element, spec: _Type, namespace: str, path: str) -> None:
    for name, value in elem.attrib.items():
        if name in _XSI_ALLOWED:
            continue
        attribute = spec.attributes.get(str(name))
        if attribute is None:
            raise _Invalid(f"{path}: attribute {etree.QName(name).localname} is not allowed")
        _value(str(value), attribute, f"{path}/@{attribute.name}")
    for attribute in spec.attributes.values():
        if attribute.min_occurs and attribute.name not in elem.attrib:
            raise _Invalid(f"{path}: attribute {attribute.name} is missing")
    if spec.text is not None:
        if len(elem):
            raise _Invalid(f"{path}: a value cannot hold elements")
        _value(elem.text or "", spec.text, path)
        return
    if elem.text is not None and elem.text.strip():
        raise _Invalid(f"{path}: text is not allowed here")
    counts: dict[str, int] = {}
    position = -1
    prefix = f"{{{namespace}}}"
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            raise _Invalid(f"{path}: only elements are allowed here")
        if child.tail is not None and child.tail.strip():
            raise _Invalid(f"{path}: text is not allowed here")
        local = tag[len(prefix) :] if tag.startswith(prefix) else None
        field = spec.elements.get(local) if local is not None else None
        if field is None:
            field = spec.wildcard
            if field is None:
                raise _Invalid(f"{path}: element {etree.QName(tag).localname} is not expected")
        if field.position < position:
            raise _Invalid(f"{path}: element {field.name} is out of order")
        if spec.choice and counts and field.name not in counts:
            raise _Invalid(f"{path}: only one of {', '.join(spec.elements)} is allowed")
        position = field.position
        count = counts[field.name] = counts.get(field.name, 0) + 1
        if field.max_occurs is not None and count > field.max_occurs:
            raise _Invalid(f"{path}: too many {field.name} (at most {field.max_occurs})")
        where = f"{path}/{field.name}"
        if field is spec.wildcard:
            continue  # lax: any well-formed content
        if field.model is not None:
            _element(child, _type(field.model), namespace, where)
        else:
            if len(child):
                raise _Invalid(f"{where}: a value cannot hold elements")
            if child.attrib and not set(child.attrib) <= _XSI_ALLOWED:
                raise _Invalid(f"{where}: attributes are not allowed here")
            _value(child.text or "", field, where)
    if spec.choice:
        if not counts:
            raise _Invalid(f"{path}: one of {', '.join(spec.elements)} is required")
        return
    fields = list(spec.elements.values())
    if spec.wildcard is not None:
        fields.append(spec.wildcard)
    for field in fields:
        found = counts.get(field.name, 0)
        if found < field.min_occurs:
            what = field.name if field is not spec.wildcard else "an element"
            raise _Invalid(f"{path}: {what} is missing")


# XSD lexical forms (the whitespace around them is collapsed away first)
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_ZONE = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]|[+-]14:00)?"
_DATE = re.compile(r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})" + _ZONE)
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
_DATETIME = re.compile(r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T" + _TIME + _ZONE)
_TIME_ONLY = re.compile(_TIME + _ZONE)
_BOOLEAN = ("true", "false", "1", "0")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _value(text: str, field: _Field, path: str) -> None:
    target = field.target
    if isinstance(target, type) and issubclass(target, Enum):
        if text not in {member.value for member in target}:
            raise _Invalid(f"{path}: {text!r} is not one of the allowed codes")
        return
    if target is Decimal:
        _decimal(text.strip(), field, path)
        return
    if target in (XmlDate, XmlDateTime, XmlTime):
        _temporal(text, target, path)
        return
    if target is bool:
        if text.strip() not in _BOOLEAN:
            raise _Invalid(f"{path}: {text!r} is not a boolean")
        return
    if target is int:
        if not _INTEGER.fullmatch(text.strip()):
            raise _Invalid(f"{path}: {text!r} is not an integer")
        return
    facets = field.facets
    if "min_length" in facets and len(text) < facets["min_length"]:
        raise _Invalid(f"{path}: empty or shorter than {facets['min_length']} characters")
    if "max_length" in facets and len(text) > facets["max_length"]:
        raise _Invalid(f"{path}: longer than {facets['max_length']} characters")
    if "pattern" in facets and not _pattern(facets["pattern"]).fullmatch(text):
        raise _Invalid(f"{path}: {text!r} does not have the required form")


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _decimal(text: str, field: _Field, path: str) -> None:
    if not _DECIMAL.fullmatch(text):
        raise _Invalid(f"{path}: {text!r} is not a decimal number")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # the pattern above admits only what Decimal reads
        raise _Invalid(f"{path}: {text!r} is not a decimal number") from exc
    _sign, digits_tuple, exponent = value.as_tuple()
    digits = list(digits_tuple)
    assert isinstance(exponent, int)
    while exponent < 0 and digits and digits[-1] == 0:  # trailing fraction zeros
        digits.pop()
        exponent += 1
    while digits and digits[0] == 0:
        digits.pop(0)
    fraction = max(-exponent, 0)
    total = max(len(digits) + max(exponent, 0), fraction)
    facets = field.facets
    if "total_digits" in facets and total > facets["total_digits"]:
        raise _Invalid(f"{path}: more than {facets['total_digits']} digits")
    if "fraction_digits" in facets and fraction > facets["fraction_digits"]:
        raise _Invalid(f"{path}: more than {facets['fraction_digits']} decimals")
    low, high = facets.get("min_inclusive"), facets.get("max_inclusive")
    above, below = facets.get("min_exclusive"), facets.get("max_exclusive")
    if (
        (low is not None and value < Decimal(low))
        or (high is not None and value > Decimal(high))
        or (above is not None and value <= Decimal(above))
        or (below is not None and value >= Decimal(below))
    ):
        raise _Invalid(f"{path}: {text} is out of range")


def _temporal(text: str, target: Any, path: str) -> None:
    try:
        if target is XmlDate:
            match = _DATE.fullmatch(text)
            if match is None:
                raise ValueError(text)
            dt.date(int(match[1]), int(match[2]), int(match[3]))
        elif target is XmlDateTime:
            match = _DATETIME.fullmatch(text)
            if match is None:
                raise ValueError(text)
            dt.date(int(match[1]), int(match[2]), int(match[3]))
            _clock(match[4], match[5], match[6], match[7])
        else:
            match = _TIME_ONLY.fullmatch(text)
            if match is None:
                raise ValueError(text)
            _clock(match[1], match[2], match[3], match[4])
    except ValueError as exc:
        what = {XmlDate: "date", XmlDateTime: "date and time", XmlTime: "time"}[target]
        raise _Invalid(f"{path}: {text!r} is not a valid {what}") from exc


def _clock(hour: str, minute: str, second: str, fraction: str | None) -> None:
    """A time of day; XSD also allows 24:00:00, the end of the day."""
    if hour == "24" and minute == second == "00" and not (fraction or "").strip(".0"):
        return
    dt.time(int(hour), int(minute), int(second))


# -- values out of a bound model ------------------------------------------------------


def date_time(value: XmlDateTime) -> dt.datetime:
    """An ISODateTime as a datetime (naive when the client gave no offset); XSD's
    `T24:00:00` is midnight at the end of that day."""
    if value.hour == 24:
        start = value.replace(hour=0).to_datetime()
        return start + dt.timedelta(days=1)
    return value.to_datetime()


def time_of_day(value: XmlTime) -> dt.time:
    """An ISOTime as a time; XSD's `24:00:00` (the end of the day) is the last instant."""
    if value.hour == 24:
        return dt.time.max.replace(tzinfo=value.replace(hour=0).to_time().tzinfo)
    return value.to_time()
