"""Reading `pain.001.001.03` safely and in one streaming pass.

One pass of lxml's pull parser parses and validates against the official schema
(read from the installed sepaxml package) block by block; each complete
`CdtTrfTxInf` is copied into a small record and freed, so memory does not grow
with the file. DTDs are refused, no entity is declared or loaded, the network is
never touched, and reading stops as soon as the transaction limit is passed.

`stream` yields what it finds in file order — the group header, each payment
information as it starts, transactions in chunks — and always ends with the
`ParsedFile` summary: totals per payment information and, if the file turned out
unusable at any point, its failure. A consumer may act on chunks as they come,
but only the summary says whether the file as a whole is valid.

One deliberate change to the official schema: the `ISODate` type is relaxed to
a short string, so that an impossible execution date (`2026-02-30`) reaches the
rules and is answered per payment with DT01 instead of failing the whole file
as XSD-invalid. Everything else is validated exactly as published.

Expected bad input is a value (`ParsedFile.failure`), never an exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from lxml import etree

from gateway.inbound.findings import Finding
from gateway.reasons import Reason

MESSAGE = "pain.001.001.03"
NS = f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"
_N = "{" + NS + "}"
_NLEN = len(_N)
name_chars_max = 140
xsd_errors_reported_max = 3


class ParsedTx(NamedTuple):
    """One credit transfer as the client wrote it (text, not yet judged)."""

    seq: int
    pmt_seq: int
    instr_id: str | None
    end_to_end_id: str
    amount: str
    currency: str
    creditor_name: str | None
    creditor_iban: str | None
    creditor_other_id: str | None
    creditor_bic: str | None
    remittance: str | None


@dataclass(slots=True)
class ParsedPmtInf:
    seq: int
    pmt_inf_id: str
    batch_booking: bool | None
    nb_of_txs: str | None
    ctrl_sum: str | None
    requested_date: str
    debtor_name: str | None
    debtor_iban: str | None
    debtor_other_id: str | None
    debtor_currency: str | None
    debtor_bic: str | None
    count: int = 0
    amount_sum: Decimal = field(default_factory=Decimal)


@dataclass(slots=True)
class ParsedHeader:
    msg_id: str
    created_at: str
    nb_of_txs: str
    ctrl_sum: str | None
    initiating_party: str | None


@dataclass(slots=True)
class ParsedFile:
    """The file as a whole: header, payment informations with their totals, or a failure."""

    header: ParsedHeader | None = None
    payment_infos: list[ParsedPmtInf] = field(default_factory=list)
    failure: Finding | None = None
    message: str = MESSAGE
    count: int = 0
    amount_sum: Decimal = field(default_factory=Decimal)


# A transaction as `stream` hands it on: a plain tuple in `ParsedTx` order
# (`ParsedTx._make(row)`); 100,000 named tuples would only be taken apart again to be
# sent to the booking process (`reader.py`).
TxRow = tuple[
    int, int, str | None, str, str, str, str | None, str | None, str | None, str | None, str | None
]
Event = ParsedHeader | ParsedPmtInf | list[TxRow] | ParsedFile
chunk_transactions = 2000  # transactions per chunk `stream` hands on


def schema_path() -> Path:
    import sepaxml

    return Path(sepaxml.__file__).parent / "schemas" / f"{MESSAGE}.xsd"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The official pain.001.001.03 schema with `ISODate` relaxed (see module docstring)."""
    doc = etree.parse(str(schema_path()), etree.XMLParser(resolve_entities=False, no_network=True))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for simple in doc.getroot().iter(f"{xs}simpleType"):
        if simple.get("name") == "ISODate":
            for child in list(simple):
                simple.remove(child)
            restriction = etree.SubElement(simple, f"{xs}restriction", base="xs:string")
            etree.SubElement(restriction, f"{xs}minLength", value="1")
            etree.SubElement(restriction, f"{xs}maxLength", value="35")
    return etree.XMLSchema(doc)


def _text(elem: Any) -> str:
    text = elem.text
    return text.strip() if text else ""


def _account(acct: Any) -> tuple[str | None, str | None, str | None]:
    """(IBAN, other id, currency) of a `DbtrAcct`/`CdtrAcct`."""
    iban = other = ccy = None
    for child in acct:
        local = child.tag[_NLEN:]
        if local == "Id":
            for ident in child:
                if ident.tag[_NLEN:] == "IBAN":
                    iban = _text(ident)
                else:
                    other = (
                        _text(ident.find(_N + "Id")) if ident.find(_N + "Id") is not None else ""
                    )
        elif local == "Ccy":
            ccy = _text(child)
    return iban, other, ccy


def _bic(agent: Any) -> str | None:
    for fin in agent:
        if fin.tag == _T_FIN:
            for node in fin:
                if node.tag == _T_BIC:
                    return (node.text or "").strip()
    return None


def _name(party: Any) -> str | None:
    for node in party:
        if node.tag == _T_NM:
            return (node.text or "").strip()[:name_chars_max]
    return None


_T_PMTID, _T_AMT, _T_CDTR, _T_CDTRACCT, _T_CDTRAGT, _T_RMTINF = (
    _N + t for t in ("PmtId", "Amt", "Cdtr", "CdtrAcct", "CdtrAgt", "RmtInf")
)
_T_E2E, _T_INSTR, _T_INSTDAMT, _T_USTRD = (
    _N + t for t in ("EndToEndId", "InstrId", "InstdAmt", "Ustrd")
)
_T_FIN, _T_BIC, _T_NM, _T_REF = (_N + t for t in ("FinInstnId", "BIC", "Nm", "Ref"))
_T_ID, _T_IBAN = _N + "Id", _N + "IBAN"
assert ParsedTx._fields[4] == "amount"
_T_DOC, _T_INITN, _T_GRPHDR, _T_PMTINF, _T_TX = (
    _N + t for t in ("Document", "CstmrCdtTrfInitn", "GrpHdr", "PmtInf", "CdtTrfTxInf")
)


def _tx(elem: Any, seq: int, pmt_seq: int) -> TxRow:
    """Copy one `CdtTrfTxInf` into a record. Loops over direct children, each tag read
    once, are the fast path in lxml (reading `.tag` builds a string every time)."""
    instr_id = e2e = amount = currency = None
    name = iban = other = bic = remittance = None
    for child in elem:
        tag = child.tag
        if tag == _T_PMTID:
            for ident in child:
                local = ident.tag
                if local == _T_E2E:
                    e2e = (ident.text or "").strip()
                elif local == _T_INSTR:
                    instr_id = (ident.text or "").strip()
        elif tag == _T_AMT:
            for amt in child:
                # InstdAmt, or EqvtAmt (amount in another currency), which we do not support
                amount = (amt.text or "").strip() if amt.tag == _T_INSTDAMT else ""
                currency = amt.get("Ccy") or ""
        elif tag == _T_CDTR:
            for node in child:
                if node.tag == _T_NM:
                    name = (node.text or "").strip()[:name_chars_max]
                    break
        elif tag == _T_CDTRACCT:
            for part in child:
                if part.tag == _T_ID:
                    for ident in part:
                        if ident.tag == _T_IBAN:
                            iban = (ident.text or "").strip()
                        else:
                            found = ident.find(_T_ID)
                            other = _text(found) if found is not None else ""
        elif tag == _T_CDTRAGT:
            bic = _bic(child)
        elif tag == _T_RMTINF:
            parts = [(u.text or "").strip() for u in child if u.tag == _T_USTRD]
            if not parts:
                parts = [r.text for r in child.iter(_T_REF) if r.text]
            remittance = " ".join(parts)[:name_chars_max] if parts else None
    if e2e is None or amount is None or currency is None:
        raise _invalid("CdtTrfTxInf without EndToEndId or InstdAmt")
    return (seq, pmt_seq, instr_id, e2e, amount, currency, name, iban, other, bic, remittance)


def _pmt_inf(elem: Any, seq: int) -> ParsedPmtInf:
    """The payment-information header, read from the children before the first transaction."""
    values: dict[str, Any] = {}
    for child in elem:
        local = child.tag[_NLEN:]
        if local == "CdtTrfTxInf":
            break
        if local in ("PmtInfId", "NbOfTxs", "CtrlSum", "ReqdExctnDt"):
            values[local] = _text(child)
        elif local == "BtchBookg":
            values[local] = _text(child) in ("true", "1")
        elif local == "Dbtr":
            values["Dbtr"] = _name(child)
        elif local == "DbtrAcct":
            values["DbtrAcct"] = _account(child)
        elif local == "DbtrAgt":
            values["DbtrAgt"] = _bic(child)
    if "PmtInfId" not in values or "ReqdExctnDt" not in values:
        raise _invalid("PmtInf without PmtInfId or ReqdExctnDt")
    iban, other, ccy = values.get("DbtrAcct", (None, None, None))
    return ParsedPmtInf(
        seq=seq,
        pmt_inf_id=values["PmtInfId"],
        batch_booking=values.get("BtchBookg"),
        nb_of_txs=values.get("NbOfTxs"),
        ctrl_sum=values.get("CtrlSum"),
        requested_date=values["ReqdExctnDt"],
        debtor_name=values.get("Dbtr"),
        debtor_iban=iban,
        debtor_other_id=other,
        debtor_currency=ccy,
        debtor_bic=values.get("DbtrAgt"),
    )


def _header(elem: Any) -> ParsedHeader:
    values = {child.tag[_NLEN:]: child for child in elem}
    if not {"MsgId", "CreDtTm", "NbOfTxs"} <= values.keys():
        raise _invalid("GrpHdr without MsgId, CreDtTm or NbOfTxs")
    party = values.get("InitgPty")
    party_name = party.find(_N + "Nm") if party is not None else None
    return ParsedHeader(
        msg_id=_text(values["MsgId"]),
        created_at=_text(values["CreDtTm"]),
        nb_of_txs=_text(values["NbOfTxs"]),
        ctrl_sum=_text(values["CtrlSum"]) if "CtrlSum" in values else None,
        initiating_party=_text(party_name) if party_name is not None else None,
    )


class _Stop(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


def _invalid(what: str) -> _Stop:
    # The parser hands us elements before it reports that they broke the schema (e.g.
    # `<PmtInfId>…<PmtInfId>`), so what the schema requires may be missing.
    return _Stop(Finding(Reason.FF01, f"not valid against {MESSAGE}: {what}"))


def _check_root(elem: Any) -> None:
    docinfo = elem.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _Stop(Finding(Reason.FF01, "a DTD (DOCTYPE) is not allowed"))
    encoding = (docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        raise _Stop(Finding(Reason.FF01, f"encoding must be UTF-8, the file declares {encoding}"))
    tag = elem.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        raise _Stop(Finding(Reason.FF01, f"root element {tag!r} has no ISO 20022 namespace"))
    namespace = tag[1:].partition("}")[0]
    if namespace != NS:
        message = namespace.rsplit(":", 1)[-1]
        raise _Stop(Finding(Reason.FF01, f"unsupported message {message!r}: expected {MESSAGE}"))


def _add(total: Decimal, text: str) -> Decimal:
    try:
        return total + Decimal(text)
    except InvalidOperation:
        return total


def stream(
    path: Path, *, transactions_max: int, chunk_size: int = chunk_transactions
) -> Iterator[Event]:
    """Parse and validate `path`, yielding what it holds in order; the last item is
    always the `ParsedFile` summary, carrying a FF01 finding if the file is unusable."""
    result = ParsedFile()
    try:
        yield from _events(path, transactions_max, chunk_size, result)
    except _Stop as stop:
        result.failure = stop.finding
    except etree.XMLSyntaxError as exc:
        result.failure = Finding(Reason.FF01, _describe(exc))
    if result.failure is None and result.header is None:
        result.failure = Finding(Reason.FF01, "no group header")
    yield result


def _describe(exc: etree.XMLSyntaxError) -> str:
    text = str(exc.msg if hasattr(exc, "msg") and exc.msg else exc)
    text = text.replace(_N, "")
    if "Document is empty" in text or "Start tag expected" in text:
        return f"not XML: {text}"
    if "Premature end of data" in text:
        return f"not well-formed: the document ends before </Document> ({text})"
    return f"not well-formed or not valid against {MESSAGE}: {text}"


# UTF-16/32 byte-order marks, and the XML declaration's encoding (read from the raw
# bytes: lxml's docinfo does not know the encoding yet at the root's start event).
_NOT_UTF8_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\xff\xfe")
_DECLARED_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']"
)
prolog_bytes = 512


def _check_encoding(head: bytes) -> None:
    if head.startswith(_NOT_UTF8_BOMS) or b"\x00" in head[:4]:
        raise _Stop(Finding(Reason.FF01, "encoding must be UTF-8, the file is UTF-16 or UTF-32"))
    declared = _DECLARED_ENCODING.match(head)
    if declared is not None:
        name = declared.group(1).decode("ascii", "replace").upper()
        if name not in ("UTF-8", "UTF8"):
            raise _Stop(Finding(Reason.FF01, f"encoding must be UTF-8, the file declares {name}"))


def _sniff(path: Path) -> None:
    """Look at the prolog and root element only: DTD, encoding, namespace."""
    if os.path.getsize(path) == 0:
        raise _Stop(Finding(Reason.FF01, "the file is empty"))
    with open(path, "rb") as handle:
        _check_encoding(handle.read(prolog_bytes))
    sniffer = etree.iterparse(
        str(path), events=("start",), resolve_entities=False, no_network=True, load_dtd=False
    )
    for _event, elem in sniffer:
        _check_root(elem)
        break


feed_bytes = 1 << 16  # read and parse the file in blocks of this size
# A transaction (or payment information) must end within this much of the file. The
# schema bounds neither `RmtInf/Ustrd` nor `Strd`, so one valid transaction could hold
# a whole upload, and the tree holds a transaction until it ends: ~10 bytes of memory
# per byte of XML. A real one, even with hundreds of structured remittances, is < 1 MB.
stall_bytes_max = 4 << 20


def _events(
    path: Path, transactions_max: int, chunk_size: int, result: ParsedFile
) -> Iterator[Event]:
    """Feed the file to a pull parser block by block; after each block, take the
    transactions it completed out of the tree (`_Harvest`).

    The parser reports only where a payment information starts: listening for every
    element's end (`iterparse`) cost ~0.15 s per 100,000 transactions. Children of a
    payment information are complete but for the last one, which may still be being
    parsed. Schema errors are reported when the parser is closed; until then the file
    is only read, never trusted (see `stream`).

    Entities: the file has no DTD (`_sniff` refused it), so only XML's five predefined
    ones and character references exist; `"internal"` resolves just those. (`False`
    together with a schema made lxml accept a document cut short without an error.)
    """
    _sniff(path)
    parser = etree.XMLPullParser(
        events=("start",),
        tag=(_T_PMTINF,),
        schema=schema(),
        resolve_entities="internal",
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    harvest = _Harvest(result, transactions_max, chunk_size)
    fed = progress_at = 0  # bytes parsed; … when a transaction or payment information began
    progress = (0, 0)
    with open(path, "rb") as handle:
        while block := handle.read(feed_bytes):
            parser.feed(block)
            fed += len(block)
            for _event, elem in parser.read_events():
                yield from harvest.payment_info_started(elem)
            yield from harvest.take(final=False)
            now = (harvest.seq, harvest.started)
            if now != progress:
                progress, progress_at = now, fed
            elif fed - progress_at > stall_bytes_max:
                raise _Stop(
                    Finding(
                        Reason.FF01,
                        f"no transaction ends within {stall_bytes_max} bytes of the file",
                    )
                )
    root = parser.close()  # raises if the file is not well-formed, complete and valid
    if root is None or root.tag != _T_DOC:
        raise _Stop(Finding(Reason.FF01, "not well-formed: the document ends before </Document>"))
    yield from harvest.take(final=True)
    if harvest.chunk:
        yield harvest.chunk
    result.count = harvest.seq
    result.amount_sum = sum((p.amount_sum for p in result.payment_infos), Decimal())


class _Harvest:
    """Takes complete transactions out of the tree the pull parser is building, copies
    them into records, and frees them, so the tree holds about one block of the file."""

    def __init__(self, result: ParsedFile, transactions_max: int, chunk_size: int) -> None:
        self.result = result
        self.transactions_max = transactions_max
        self.chunk_size = chunk_size
        self.seq = 0  # transactions taken
        self.started = 0  # payment informations begun
        self.chunk: list[TxRow] = []
        self.initiation: Any = None  # CstmrCdtTrfInitn
        self.elem: Any = None  # the payment information being read
        self.record: ParsedPmtInf | None = None  # its header, once its first tx is complete

    def payment_info_started(self, elem: Any) -> Iterator[Event]:
        """A payment information has started: the one before it (or the group header)
        has ended. Only what has ended is ever read or freed: a `PmtInf` anywhere but
        in `CstmrCdtTrfInitn` (the parser may still be inside its parent) stops the read."""
        parent = elem.getparent()
        if self.elem is None:
            root = parent.getparent() if parent is not None else None
            if (
                parent is None
                or parent.tag != _T_INITN
                or root is None
                or root.tag != _T_DOC
                or root.getparent() is not None
            ):
                raise _invalid("PmtInf outside CstmrCdtTrfInitn")
            _check_root(root)
            self.initiation = parent
            header = parent[0]  # the group header, before the first payment information
            if header.tag != _T_GRPHDR:
                raise _invalid("no GrpHdr before the first PmtInf")
            self.result.header = _header(header)
            yield self.result.header
            header.clear()
            parent.remove(header)
        else:
            if parent is not self.initiation:
                raise _invalid("PmtInf outside CstmrCdtTrfInitn")
            yield from self.take(final=True)  # the previous one has ended
            done = self.elem
            done.clear()
            parent.remove(done)
        self.elem = elem
        self.record = None
        self.started += 1

    def take(self, *, final: bool) -> Iterator[Event]:
        """The transactions of the current payment information that are complete (all
        of them once it has ended, or at the end of the file)."""
        elem = self.elem
        if elem is None:
            return
        stop = len(elem) if final else len(elem) - 1
        if stop <= 0:
            return
        children = elem[:stop]
        first = 0
        if self.record is None:
            for first, child in enumerate(children):  # noqa: B007
                if child.tag == _T_TX:
                    break
            else:
                return  # its header is not over yet (or, at the end, it has no transaction)
            self.record = _pmt_inf(elem, len(self.result.payment_infos))
            self.result.payment_infos.append(self.record)
            # Handed on before its transactions, so its `count` and `amount_sum` are
            # still 0 in what the consumer gets now: the totals are in the summary.
            yield self.record
        record = self.record
        pmt_seq = record.seq
        chunk = self.chunk
        seq = started = self.seq
        total = record.amount_sum
        for child in children[first:]:
            if child.tag != _T_TX:
                raise _invalid("PmtInf with something else after its first CdtTrfTxInf")
            if seq >= self.transactions_max:
                raise _Stop(
                    Finding(
                        Reason.FF01, f"more than {self.transactions_max} transactions in the file"
                    )
                )
            row = _tx(child, seq, pmt_seq)
            chunk.append(row)
            total = _add(total, row[4])  # InstdAmt (`ParsedTx.amount`)
            seq += 1
            if len(chunk) >= self.chunk_size:
                yield chunk
                chunk = self.chunk = []
        self.seq = seq
        record.count += seq - started
        record.amount_sum = total
        # Free what was read (the header too, once it is in `record`). Without proxies
        # of its elements alive, lxml frees them outright instead of moving each
        # subtree to a document of its own: ~0.1 s per 100,000 transactions.
        children = child = None
        del elem[:stop]
