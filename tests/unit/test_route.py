"""Routing a file in /in by its root namespace: what a client's upload is taken for."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.inbound import safe_xml
from gateway.inbound.route import head_bytes, message_of
from tests.unit import pull_samples as s


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (s.camt060("03"), "camt.060.001.03"),
        (s.camt060("05"), "camt.060.001.05"),
        (s.camt055("01"), "camt.055.001.01"),
        (s.camt055("09"), "camt.055.001.09"),
        (s.Maker("pain.001.001.03").root(), "pain.001.001.03"),
        (s.Maker("pain.001.001.09").root(), "pain.001.001.09"),
    ],
)
def test_the_root_namespace_names_the_message(document: object, expected: str) -> None:
    """Each request type is recognised from the first block alone, supported or not."""
    data = s.to_bytes(document)  # type: ignore[arg-type]
    assert message_of(data[:head_bytes]) == expected


def test_a_byte_order_mark_comments_and_a_long_prolog_are_fine() -> None:
    data = s.to_bytes(s.camt055("09"))
    declaration, body = data.split(b"?>", 1)
    head = b"\xef\xbb\xbf" + declaration + b"?>\n<!-- exported by ERP -->\n<?erp v=1?>" + body
    assert message_of(head) == "camt.055.001.09"


def test_only_the_start_of_the_file_is_needed() -> None:
    """The head may end anywhere after the root's start tag (the rest is not read)."""
    data = s.to_bytes(s.camt060("05"))
    cut = data.index(b"<AcctRptgReq>")
    assert message_of(data[:cut]) == "camt.060.001.05"


@pytest.mark.parametrize("name", sorted(s.hostile(s.to_bytes(s.camt060("05")), "camt.060.001.05")))
def test_hostile_files_are_not_identified_unless_safely(name: str) -> None:
    """A DTD, a bomb or a non-ISO root: None, so the file is answered as SPEC §6 says
    (pain.002 RJCT FF01); what is readable still names its namespace — also a request in
    another encoding (answered as an invalid request: admi.002; it was a pain.002 that
    named the camt.060 it refused, a tester)."""
    data = s.hostile(s.to_bytes(s.camt060("05")), "camt.060.001.05")[name]
    found = message_of(data[:head_bytes])
    readable = {
        "wrong namespace": "pain.001.001.03",
        "truncated": "camt.060.001.05",
        "cut before the end tag": "camt.060.001.05",
        "undefined entity": "camt.060.001.05",
        "too deep": "camt.060.001.05",
        "Latin-1 bytes": "camt.060.001.05",
        "declared Latin-1": "camt.060.001.05",
        "UTF-16": "camt.060.001.05",
        "too big": "camt.060.001.05",
        "another root": "camt.060.001.05",
    }
    assert found == readable.get(name)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<Document xmlns='urn:example:not-iso'/>",
        b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.060'/>",
        b"<?xml version='1.0'?><!-- a comment that never ends",
        b"<Document",
    ],
)
def test_what_cannot_be_told_is_none(head: bytes) -> None:
    assert message_of(head) is None


def test_a_root_tag_and_prolog_longer_than_one_look_are_found() -> None:
    """The root is looked for a piece at a time (`safe_xml.root_look_bytes`): a prolog
    and a root start tag that each span several pieces are still read whole."""
    data = s.to_bytes(s.camt055("09"))
    declaration, body = data.split(b"?>", 1)
    comment = b"<!-- " + b"x" * (3 * safe_xml.root_look_bytes) + b" -->"
    spaces = b" " * (2 * safe_xml.root_look_bytes)
    body = body.replace(b"<Document ", b"<Document " + spaces, 1)
    assert message_of(declaration + b"?>" + comment + body) == "camt.055.001.09"


def test_the_root_is_found_without_parsing_what_follows_it() -> None:
    """A syntax error after the root's start tag does not hide the root, and what follows
    the piece holding the start tag is not parsed at all."""
    data = s.to_bytes(s.camt060("05"))
    at = data.index(b"<AcctRptgReq>")
    broken = data[:at] + b"<AcctRptgReq>&undefined;" + data[at:]
    assert message_of(broken) == "camt.060.001.05"
    parser = etree.XMLPullParser(events=("start",))
    tail = b"<x/>" * 10_000  # never parsed: the root would have 10,000 children
    root = safe_xml.root_element(parser, b"<Document xmlns='urn:a'>" + tail)
    assert root is not None and root.tag == "{urn:a}Document"
    assert len(root) < 1_000  # a piece of 512 bytes holds ~120 of them


def test_a_syntax_error_before_the_root_is_raised() -> None:
    parser = etree.XMLPullParser(events=("start",))
    with pytest.raises(etree.XMLSyntaxError):
        safe_xml.root_element(parser, b"<?xml version='1.0'?><<Document/>" + b" " * 2000)
