"""camt.053 copies: a statement asked for again is the statement issued, marked DUPL."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from gateway.outbound import camt053_copy, camt053_v02
from gateway.outbound.camt053_copy import StatementCopyError, copy_of
from tests.unit.test_camt_writers import day_entries, payment, report_of, sent

Validate = Callable[[bytes | Path, str], None]
MESSAGE = "camt.053.001.02"
NS = {"c": f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"}
MARK = b"<CpyDplctInd>DUPL</CpyDplctInd>"
OPEN = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>'


def statement(entries: list | None = None) -> bytes:  # type: ignore[type-arg]
    out = io.BytesIO()
    camt053_v02.write(report_of(day_entries() if entries is None else entries, 50000), out)
    # as the outbox keeps it, and as the copy gets it back
    return zlib.decompress(zlib.compress(out.getvalue()))


def stmt_children(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    return [etree.QName(child).localname for child in root.find("c:BkToCstmrStmt/c:Stmt", NS)]


def test_the_copy_is_valid_and_marked_at_its_place(assert_valid: Validate) -> None:
    original = statement()
    copy = copy_of(original)
    assert_valid(copy, MESSAGE)
    children = stmt_children(copy)
    assert children[: children.index("Acct") + 1] == [
        "Id", "ElctrncSeqNb", "CreDtTm", "FrToDt", "CpyDplctInd", "Acct",
    ]  # fmt: skip
    assert (
        etree.fromstring(copy).findtext("c:BkToCstmrStmt/c:Stmt/c:CpyDplctInd", namespaces=NS)
        == "DUPL"
    )


def test_everything_else_is_byte_for_byte_the_statement_issued() -> None:
    """Same MsgId, statement id, numbers, balances and entries: only the mark is added."""
    original = statement()
    copy = copy_of(original)
    assert copy.count(MARK) == 1
    assert copy.replace(MARK, b"") == original


def test_a_copy_of_a_copy_is_the_same_copy() -> None:
    copy = copy_of(statement())
    assert copy_of(copy) == copy


def test_an_indicator_already_there_becomes_dupl(assert_valid: Validate) -> None:
    original = statement().replace(b"</FrToDt>", b"</FrToDt><CpyDplctInd>COPY</CpyDplctInd>", 1)
    copy = copy_of(original)
    assert_valid(copy, MESSAGE)
    assert b"COPY" not in copy and copy.count(MARK) == 1


def test_every_statement_of_a_message_is_marked(assert_valid: Validate) -> None:
    """A message with several Stmt (and a prefixed namespace) is marked in each."""
    one = statement([sent("N1", payment(1, 100))])
    stmt = one[one.index(b"<Stmt>") : one.index(b"</Stmt>") + len(b"</Stmt>")]
    two = one.replace(stmt, stmt + stmt.replace(b"STMT-20261125-1", b"STMT-20261125-2"))
    prefixed = two.replace(b"<", b"<c:").replace(b"<c:/", b"</c:").replace(b"<c:?", b"<?")
    prefixed = prefixed.replace(b'xmlns="', b'xmlns:c="')
    for data in (two, prefixed):
        copy = copy_of(data)
        assert_valid(copy, MESSAGE)
        marks = etree.fromstring(copy).findall("c:BkToCstmrStmt/c:Stmt/c:CpyDplctInd", NS)
        assert [m.text for m in marks] == ["DUPL", "DUPL"]


def test_a_large_statement_is_copied(assert_valid: Validate) -> None:
    """Thousands of entries: the check streams, the copy is still valid."""
    original = statement([sent(f"N{i}", payment(i, 100 + i)) for i in range(3000)])
    copy = copy_of(original)
    assert copy.replace(MARK, b"") == original
    assert_valid(copy, MESSAGE)


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b"<Document/>", "no Stmt"),
        (
            b"<Document><BkToCstmrStmt><Stmt><Id>1</Id></Stmt></BkToCstmrStmt></Document>",
            "without Acct",
        ),
        (
            OPEN.replace(b"053", b"052") + b"<Id>1</Id><Acct/></Stmt></BkToCstmrStmt></Document>",
            "not a camt.053.001.02",
        ),
        (
            OPEN + b"<Acct/></Stmt></BkToCstmrStmt></Document>",
            "not at its place",
        ),
        (
            OPEN + b"<Id>1</Id><Acct/></Stmt>",
            "not well-formed",
        ),
    ],
)
def test_what_is_not_a_statement_of_ours_is_a_fault(stored: bytes, problem: str) -> None:
    """Never sent as a copy: the stored bytes are ours, so this is our fault, not the client's."""
    with pytest.raises(StatementCopyError, match=problem):
        copy_of(stored)


def test_the_mark_is_the_schemas_code() -> None:
    assert camt053_copy.DUPLICATE == "DUPL"
