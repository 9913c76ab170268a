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


PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
WITH_ENTITY = (
    '<?xml version="1.0" encoding="{}"?>'
    '<!DOCTYPE Document [<!ENTITY x "INJECTED"><!ENTITY y "&x;&x;&x;&x;">]>'
    f'<Document xmlns="{PAIN}"><CstmrCdtTrfInitn><GrpHdr><MsgId>&y;</MsgId>'
    "<CreDtTm>2026-12-07T10:00:00</CreDtTm><NbOfTxs>1</NbOfTxs></GrpHdr>"
)


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16", "UTF-16-LE", "UTF-16-BE", "UTF-32"])
def test_a_broken_file_with_a_dtd_echoes_nothing_in_any_encoding(encoding: str) -> None:
    """The echo of a rejected file never declares, let alone expands, an entity: the DTD
    of a file in UTF-16 hides from a look at its raw bytes (a tester had `INJECTED` as
    the OrgnlMsgId of its answer), so the echo judges what the parser read."""
    declared = encoding.removesuffix("-LE").removesuffix("-BE")
    head = WITH_ENTITY.format(declared).encode(encoding.lower())
    assert safe_xml.echo(head) is None


def test_a_broken_file_in_utf_16_still_echoes_its_group_header() -> None:
    """Refused for its encoding, a file without a DTD still tells its MsgId (SPEC §6)."""
    declaration, rest = WITH_ENTITY.format("UTF-16").replace("&y;", "ERP-16").split("?>", 1)
    without_dtd = declaration + "?>" + rest.split("]>", 1)[1]
    found = safe_xml.echo(without_dtd.encode("utf-16"))
    assert found is not None and found.msg_id == "ERP-16"
    assert found.message == "pain.001.001.03" and found.nb_of_txs == "1"


@pytest.mark.parametrize("padding", range(0, 600, 7))
def test_what_comes_before_a_byte_the_declared_encoding_refuses_is_echoed(padding: int) -> None:
    """A file declared US-ASCII with UTF-8 right after its MsgId is refused by the parser
    at that byte; the MsgId before it is still echoed (SPEC §6: whatever could be read),
    wherever the byte falls in the pieces the file is read in."""
    head = (
        f'<?xml version="1.0" encoding="US-ASCII"?><!--{"x" * padding}-->'
        f'<Document xmlns="{PAIN}"><CstmrCdtTrfInitn><GrpHdr><MsgId>ASCII-1</MsgId>'
        "<CreDtTm>ž</CreDtTm>"
    ).encode()
    found = safe_xml.echo(head)
    assert found is not None and found.msg_id == "ASCII-1"
