"""A copy of a statement issued (SPEC §15): the same bytes, marked `CpyDplctInd` `DUPL`.

A client asking for a past day's camt.053 again gets exactly what it got then — the
same `MsgId`, statement id, sequence numbers, balances and entries — with one element
added to each `Stmt` at its place in the schema (after `Id`, `ElctrncSeqNb`,
`LglSeqNb`, `CreDtTm`, `FrToDt`; before `RptgSrc` and `Acct`). Everything else stays
byte for byte as stored, so the copy reconciles exactly with the original.

The statement is ours (from the outbox), so the insertion is made in the bytes and
then checked by a streaming pass over the result (flat memory, whatever the size):
each `Stmt` holds exactly one `CpyDplctInd`, `DUPL`, at its place. A statement that
fails the check is a fault of ours (`StatementCopyError`), never sent.
"""

from __future__ import annotations

import io
import re

from lxml import etree

from gateway.outbound.camt053_v02 import MESSAGE

NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"
DUPLICATE = "DUPL"

# Stmt children that come before CpyDplctInd (AccountStatement2), and the ones after it
_BEFORE = ("Id", "ElctrncSeqNb", "LglSeqNb", "CreDtTm", "FrToDt")
_STMT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?Stmt>")


class StatementCopyError(ValueError):
    """The stored statement is not one we can copy: a fault of ours, not the client's."""


def copy_of(statement: bytes) -> bytes:
    """The stored camt.053.001.02 `statement` as a copy (`CpyDplctInd` `DUPL` in each
    `Stmt`; an indicator already there is set to `DUPL`)."""
    parts: list[bytes] = []
    at = marked = 0
    for match in _STMT.finditer(statement):
        prefix = match.group(1) + b":" if match.group(1) else b""
        start = match.end()
        after = re.compile(b"<" + re.escape(prefix) + rb"(?:RptgSrc|Acct)[\s/>]").search(
            statement, start
        )
        if after is None:
            raise StatementCopyError("a Stmt without Acct")
        end = after.start()
        existing = re.compile(
            rb"<"
            + re.escape(prefix)
            + rb"CpyDplctInd>[^<]*</"
            + re.escape(prefix)
            + rb"CpyDplctInd>"
        ).search(statement, start, end)
        mark = b"<%sCpyDplctInd>%s</%sCpyDplctInd>" % (prefix, DUPLICATE.encode(), prefix)
        if existing is not None:
            parts += [statement[at : existing.start()], mark]
            at = existing.end()
        else:
            parts += [statement[at:end], mark]
            at = end
        marked += 1
    if not marked:
        raise StatementCopyError("no Stmt in the stored statement")
    parts.append(statement[at:])
    copy = b"".join(parts)
    _check(copy, marked)
    return copy


def _check(copy: bytes, marked: int) -> None:
    """Stream the copy: a camt.053.001.02 whose every Stmt has one DUPL at its place."""
    n = f"{{{NAMESPACE}}}"
    statements = 0
    try:
        events = etree.iterparse(
            io.BytesIO(copy),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,  # our own statement, which may be large
        )
        depth = 0
        children: list[str] = []  # the local names of the current Stmt's children
        indicators: list[str | None] = []  # the text of its CpyDplctInd
        for event, elem in events:
            if event == "start":
                depth += 1
                if depth == 1 and elem.tag != n + "Document":
                    raise StatementCopyError(f"not a {MESSAGE} document: {elem.tag}")
                continue
            depth -= 1
            if depth == 3 and elem.getparent().tag == n + "Stmt":
                local = elem.tag[len(n) :] if elem.tag.startswith(n) else elem.tag
                children.append(local)
                if local == "CpyDplctInd":
                    indicators.append(elem.text)
            if depth == 2 and elem.tag == n + "Stmt":
                statements += 1
                _check_order(children, indicators)
                children, indicators = [], []
            if depth >= 3:
                elem.clear(keep_tail=True)
                parent = elem.getparent()
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise StatementCopyError(f"the copy is not well-formed: {exc}") from exc
    if statements != marked:
        raise StatementCopyError(f"{statements} Stmt elements, {marked} marked")


def _check_order(children: list[str], indicators: list[str | None]) -> None:
    if indicators != [DUPLICATE]:
        raise StatementCopyError(f"a Stmt whose CpyDplctInd is not one DUPL: {indicators}")
    place = children.index("CpyDplctInd")
    if any(name not in _BEFORE for name in children[:place]) or not children[:place]:
        raise StatementCopyError("CpyDplctInd is not at its place in Stmt")
    if children[place + 1 : place + 2] not in (["RptgSrc"], ["Acct"]):
        raise StatementCopyError("CpyDplctInd is not at its place in Stmt")
