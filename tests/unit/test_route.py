"""Routing a file in /in by its root namespace: what a client's upload is taken for."""

from __future__ import annotations

import pytest

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
    """A DTD, a bomb, another encoding or a non-ISO root: None, so the file is answered as
    SPEC §6 says (pain.002 RJCT FF01); what is readable still names its namespace."""
    data = s.hostile(s.to_bytes(s.camt060("05")), "camt.060.001.05")[name]
    found = message_of(data[:head_bytes])
    readable = {
        "wrong namespace": "pain.001.001.03",
        "truncated": "camt.060.001.05",
        "cut before the end tag": "camt.060.001.05",
        "undefined entity": "camt.060.001.05",
        "too deep": "camt.060.001.05",
        "Latin-1 bytes": "camt.060.001.05",
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
