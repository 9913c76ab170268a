"""What a file that is not UTF-8 XML is told about its first bytes (`safe_xml`)."""

from __future__ import annotations

import pytest

from gateway.inbound import safe_xml
from gateway.rates import ecb

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?><Document/>'
NOT_TEXT = "not XML: the file holds NUL bytes (binary data, not text)"
WIDE = "encoding must be UTF-8, the file is UTF-16 or UTF-32"


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (DECLARATION.encode("utf-8"), None),
        (b"\xef\xbb\xbf" + DECLARATION.encode("utf-8"), None),
        (b"<Document/>", None),
        (DECLARATION.encode("utf-16"), WIDE),  # with its byte-order mark
        (DECLARATION.encode("utf-16-le"), WIDE),
        (DECLARATION.encode("utf-16-be"), WIDE),
        ("<Document/>".encode("utf-16-le"), WIDE),  # no declaration either
        (DECLARATION.encode("utf-32-le"), WIDE),
        (DECLARATION.encode("utf-32-be"), WIDE),
        (bytes(range(64)), NOT_TEXT),  # 00 01 02 03 …: binary data, not a wide encoding
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", NOT_TEXT),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", NOT_TEXT),  # a zip
        (DECLARATION.encode("utf-8")[:20] + b"\x00" + DECLARATION.encode("utf-8")[20:], NOT_TEXT),
        (
            DECLARATION.replace("UTF-8", "ISO-8859-1").encode("latin-1"),
            "encoding must be UTF-8, the file declares ISO-8859-1",
        ),
        # US-ASCII is UTF-8's first 128 characters; some ERPs declare it (a tester)
        (DECLARATION.replace("UTF-8", "US-ASCII").encode("ascii"), None),
    ],
    ids=[
        "utf-8", "utf-8 with BOM", "no declaration", "utf-16 with BOM", "utf-16-le",
        "utf-16-be", "utf-16-le without declaration", "utf-32-le", "utf-32-be", "bytes 0-63",
        "an ELF binary", "a zip", "a NUL inside", "latin-1", "us-ascii",
    ],
)  # fmt: skip
def test_the_first_bytes_say_what_the_file_is(head: bytes, problem: str | None) -> None:
    assert safe_xml.encoding_problem(head) == problem


def test_a_rates_file_obeys_the_same_rules() -> None:
    binary = bytes(range(64))
    assert ecb.check_prolog(binary) == safe_xml.encoding_problem(binary) == NOT_TEXT
    wide = DECLARATION.encode("utf-16-le")
    assert ecb.check_prolog(wide) == WIDE
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'
    assert ecb.check_prolog(doctype) == "a DTD (DOCTYPE) is not allowed"
