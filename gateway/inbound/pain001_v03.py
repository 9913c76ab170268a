"""Reading `pain.001.001.03` safely and in one streaming pass.

One pass of lxml's pull parser parses and validates against the official schema
(read from the installed sepaxml package) block by block; each complete
`CdtTrfTxInf` is copied into a small record and freed, so memory does not grow
with the file. DTDs are refused, no entity is declared or loaded, the network is
never touched, and reading stops as soon as the transaction limit is passed.

`stream` takes the file's bytes as blocks (the read stage opens the file: this module
does no I/O) and yields what it finds in file order — the group header, each payment
information as it starts, transactions in chunks — and always ends with the
`ParsedFile` summary: the file's totals (and the payment informations whose declared
totals are not their own) and, if the file turned out
unusable at any point, its failure and whatever of its group header could be read
(`Echo`), so that even a rejected file is answered with its own MsgId.

One deliberate change to the official schema: `ReqdExctnDt` takes any short string
instead of `ISODate`, so that an impossible execution date (`2026-02-30`) reaches the
rules and is answered per payment with DT01 instead of failing the whole file as
XSD-invalid. Every other element is validated exactly as published (dates inside
structured remittance too: they are copied into our statements as sent).

Expected bad input is a value (`ParsedFile.failure`), never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from copy import deepcopy
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.inbound import safe_xml
from gateway.inbound.findings import Finding
from gateway.inbound.parsed import (
    PURPOSE_CODE,
    PURPOSE_PROPRIETARY,
    USTRD_SEPARATOR,
    ParsedFile,
    ParsedHeader,
    ParsedPmtInf,
    ParsedTx,
)
from gateway.reasons import Reason

MESSAGE = "pain.001.001.03"
NS = f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"
_N = "{" + NS + "}"
_NLEN = len(_N)
name_chars_max = 140
# Remittance carried to the statements as sent (SPEC §6), within these limits per payment.
remittance_lines_max = 10  # Ustrd lines
remittance_structured_max = 10  # Strd blocks
remittance_structured_bytes_max = 16 << 10  # of Strd XML, whole blocks only
# Budget code lines (SPEC §12) kept per payment and type (EKK, IKK): one more than the
# rules allow a side, so that a payment with too many is refused for it rather than cut
# short — and the lines of a side that is not judged never crowd out those of the other.
code_lines_kept_max = 21
CODE_TYPES = ("EKK", "IKK")


# A transaction as `stream` hands it on: a plain tuple in `ParsedTx` order
# (`ParsedTx._make(row)`); 100,000 named tuples would only be taken apart again to be
# sent to the booking process (`reader.py`).
TxRow = tuple[Any, ...]
Event = ParsedHeader | ParsedPmtInf | list[TxRow] | ParsedFile
chunk_transactions = 2000  # transactions per chunk `stream` hands on


def schema_path() -> Path:
    import sepaxml

    return Path(sepaxml.__file__).parent / "schemas" / f"{MESSAGE}.xsd"


_XS = "{http://www.w3.org/2001/XMLSchema}"
_RELAXED_DATE = "RequestedDateText"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The official pain.001.001.03 schema with `ReqdExctnDt` relaxed (module docstring)."""
    doc = etree.parse(str(schema_path()), etree.XMLParser(resolve_entities=False, no_network=True))
    root = doc.getroot()
    for element in root.iter(f"{_XS}element"):
        if element.get("name") == "ReqdExctnDt":
            element.set("type", _RELAXED_DATE)
    relaxed = etree.SubElement(root, f"{_XS}simpleType", name=_RELAXED_DATE)
    restriction = etree.SubElement(relaxed, f"{_XS}restriction", base="xs:string")
    etree.SubElement(restriction, f"{_XS}minLength", value="1")
    etree.SubElement(restriction, f"{_XS}maxLength", value="35")
    return etree.XMLSchema(doc)


def _text(elem: Any) -> str:
    text = elem.text
    return text.strip() if text else ""


def _account(acct: Any) -> tuple[str | None, str | None, str | None]:
    """(IBAN, other id, currency) of a `DbtrAcct`/`CdtrAcct`."""
    iban = other = ccy = None
    for child in acct:
        tag = child.tag
        if tag == _T_ID:
            for ident in child:
                if ident.tag == _T_IBAN:
                    iban = _text(ident)
                else:
                    found = ident.find(_T_ID)
                    other = _text(found) if found is not None else ""
        elif tag == _T_CCY:
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


def _remittance(rmt: Any) -> tuple[str | None, str | None]:
    """The Ustrd lines as sent (joined by `USTRD_SEPARATOR`) and the Strd blocks (XML in no
    namespace, so that a statement of the same 2009 edition can carry them as they are:
    both messages use StructuredRemittanceInformation7)."""
    lines: list[str] = []
    blocks: list[str] = []
    size = 0
    for child in rmt:
        if child.tag == _T_USTRD:
            if len(lines) < remittance_lines_max:
                lines.append(child.text or "")
        elif len(blocks) < remittance_structured_max:
            block = _unqualified(child)
            size += len(block)
            if size > remittance_structured_bytes_max:
                break
            blocks.append(block)
    return (USTRD_SEPARATOR.join(lines) if lines else None), ("".join(blocks) if blocks else None)


def _unqualified(element: Any) -> str:
    """`element` as XML whose elements are in no namespace, however the sender wrote ours
    (the default namespace or a prefix such as `ns2:`)."""
    copy = deepcopy(element)
    for node in copy.iter(tag=etree.Element):
        node.tag = etree.QName(node).localname
    etree.cleanup_namespaces(copy)
    return str(etree.tostring(copy, encoding="unicode", with_tail=False))


_T_PMTID, _T_AMT, _T_CDTR, _T_CDTRACCT, _T_CDTRAGT, _T_RMTINF, _T_RGLTRY = (
    _N + t for t in ("PmtId", "Amt", "Cdtr", "CdtrAcct", "CdtrAgt", "RmtInf", "RgltryRptg")
)
_T_DTLS, _T_TP, _T_CD = _N + "Dtls", _N + "Tp", _N + "Cd"
_T_ULTMTDBTR, _T_ULTMTCDTR, _T_PURP, _T_PRTRY = (
    _N + t for t in ("UltmtDbtr", "UltmtCdtr", "Purp", "Prtry")
)
_T_E2E, _T_INSTR, _T_INSTDAMT, _T_USTRD = (
    _N + t for t in ("EndToEndId", "InstrId", "InstdAmt", "Ustrd")
)
_T_FIN, _T_BIC, _T_NM, _T_CCY = (_N + t for t in ("FinInstnId", "BIC", "Nm", "Ccy"))
_T_ID, _T_IBAN = _N + "Id", _N + "IBAN"
_EQUIVALENT = f"{_N}Amt/{_N}EqvtAmt/{_N}Amt"
_AMOUNT = ParsedTx._fields.index("amount")
_T_DOC, _T_INITN, _T_GRPHDR, _T_PMTINF, _T_TX = (
    _N + t for t in ("Document", "CstmrCdtTrfInitn", "GrpHdr", "PmtInf", "CdtTrfTxInf")
)


def _codes(rptg: Any, found: list[str]) -> bool:
    """The EKK and IKK lines of one RgltryRptg (`Tp␟Cd␟Amt␟Ccy`, see `ParsedTx.codes`)
    added to `found`; other regulatory reporting is not ours to keep. A line of a type
    already full is counted (`+Tp␟n`, see `_counted`); whether any was."""
    dropped: dict[str, int] | None = None
    for dtls in rptg.iterchildren(_T_DTLS):
        tp = cd = amount = ccy = None
        for node in dtls:  # texts taken as they are, stripped only for a line kept
            tag = node.tag
            if tag == _T_TP:
                tp = node.text
            elif tag == _T_CD:
                cd = node.text
            elif tag == _T_AMT:
                amount, ccy = node.text, node.get("Ccy")
        tp = tp.strip() if tp else ""
        # (no side can be full while fewer lines than a side's maximum are kept in all)
        if tp in CODE_TYPES and (
            len(found) < code_lines_kept_max or _kept(found, tp) < code_lines_kept_max
        ):
            cd = cd.strip() if cd else ""
            amount = amount.strip() if amount else ""
            found.append(f"{tp}\x1f{cd}\x1f{amount}\x1f{ccy or ''}")
        elif tp in CODE_TYPES:
            dropped = dropped or {}
            dropped[tp] = dropped.get(tp, 0) + 1
    if dropped:
        found.extend(f"+{tp}\x1f{n}" for tp, n in dropped.items())
    return dropped is not None


def _counted(found: list[str]) -> list[str]:
    """`found` with its counts of lines not kept added up per type, after the lines kept:
    `Tp␟+n` (`budget.not_kept`)."""
    counts: dict[str, int] = {}
    for line in found:
        if line.startswith("+"):
            tp, n = line[1:].split("\x1f")
            counts[tp] = counts.get(tp, 0) + int(n)
    kept = [line for line in found if not line.startswith("+")]
    return kept + [f"{tp}\x1f+{n}" for tp, n in counts.items()]


def _kept(found: list[str], tp: str) -> int:
    """How many of the lines in `found` are of type `tp`."""
    prefix = tp + "\x1f"
    return sum(line.startswith(prefix) for line in found)


def _tx(elem: Any, seq: int, pmt_seq: int) -> TxRow:
    """Copy one `CdtTrfTxInf` into a record. Loops over direct children, each tag read
    once, are the fast path in lxml (reading `.tag` builds a string every time)."""
    instr_id = e2e = amount = currency = None
    name = iban = other = bic = remittance = structured = None
    ultimate_debtor = ultimate_creditor = purpose = None
    codes: list[str] | None = None
    cut = False
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
            name = _name(child)
        elif tag == _T_CDTRACCT:
            iban, other, _ = _account(child)
        elif tag == _T_CDTRAGT:
            bic = _bic(child)
        elif tag == _T_RMTINF:
            remittance, structured = _remittance(child)
        elif tag == _T_RGLTRY:
            if codes is None:
                codes = []
            cut = _codes(child, codes) or cut
        elif tag == _T_ULTMTDBTR:
            ultimate_debtor = _name(child)
        elif tag == _T_ULTMTCDTR:
            ultimate_creditor = _name(child)
        elif tag == _T_PURP:
            purpose = _purpose(child)
    if e2e is None or amount is None or currency is None:
        raise _invalid("CdtTrfTxInf without EndToEndId or InstdAmt")
    return (
        seq, pmt_seq, instr_id, e2e, amount, currency, name, iban, other, bic, remittance,
        structured, "\x1e".join(_counted(codes) if cut else codes) if codes else None,
        ultimate_debtor,
        ultimate_creditor, purpose,
    )  # fmt: skip


def _purpose(purp: Any) -> str | None:
    """`Purp` as `PURPOSE_CODE` or `PURPOSE_PROPRIETARY` followed by its text (Purpose2Choice:
    an ISO External Purpose code, or a proprietary one)."""
    for node in purp:
        text = (node.text or "").strip()
        if node.tag == _T_CD:
            return PURPOSE_CODE + text
        if node.tag == _T_PRTRY:
            return PURPOSE_PROPRIETARY + text
    return None


def _pmt_inf(elem: Any, seq: int) -> ParsedPmtInf:
    """The payment-information header, read from the children before the first transaction."""
    values: dict[str, Any] = {}
    for child in elem:
        local = child.tag[_NLEN:]
        if local == "CdtTrfTxInf":
            break
        if local in ("PmtInfId", "NbOfTxs", "CtrlSum", "ReqdExctnDt", "PmtMtd"):
            values[local] = _text(child)
        elif local == "BtchBookg":
            values[local] = _text(child) in ("true", "1")
        elif local == "Dbtr":
            values["Dbtr"] = _name(child)
        elif local == "DbtrAcct":
            values["DbtrAcct"] = _account(child)
        elif local == "DbtrAgt":
            values["DbtrAgt"] = _bic(child)
        elif local == "UltmtDbtr":
            values["UltmtDbtr"] = _name(child)
    if "PmtInfId" not in values or "ReqdExctnDt" not in values:
        raise _invalid("PmtInf without PmtInfId or ReqdExctnDt")
    if values.get("PmtMtd") == "CHK":  # a cheque it was executed as a transfer (a tester)
        why = f"PmtInf {values['PmtInfId']}: PmtMtd CHK, a cheque: the treasury makes " \
            "credit transfers only (TRF, TRA)"  # fmt: skip
        raise _Stop(Finding(Reason.FF01, why))
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
        ultimate_debtor=values.get("UltmtDbtr"),
    )


def _header(elem: Any) -> ParsedHeader:
    values = {child.tag[_NLEN:]: child for child in elem}
    if not {"MsgId", "CreDtTm", "NbOfTxs"} <= values.keys():
        raise _invalid("GrpHdr without MsgId, CreDtTm or NbOfTxs")
    msg_id = _text(values["MsgId"])
    if not msg_id:  # valid (Max35Text), but its answers and DU01 need a name to go by
        raise _Stop(Finding(Reason.FF01, "GrpHdr/MsgId is blank: a file's MsgId names it"))
    party = values.get("InitgPty")
    party_name = party.find(_N + "Nm") if party is not None else None
    return ParsedHeader(
        msg_id=msg_id,
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
    if safe_xml.declares_dtd(elem):
        raise _Stop(Finding(Reason.FF01, "a DTD (DOCTYPE) is not allowed"))
    tag = elem.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        raise _Stop(Finding(Reason.FF01, f"root element {tag!r} has no ISO 20022 namespace"))
    namespace = tag[1:].partition("}")[0]
    if namespace != NS:
        message = namespace.rsplit(":", 1)[-1]
        raise _Stop(Finding(Reason.FF01, f"unsupported message {message!r}: expected {MESSAGE}"))


def _equivalent(tx: Any) -> str:
    """The amount of a transaction sent as `EqvtAmt` (refused for it, AM03): it counts
    towards CtrlSum all the same, which ISO defines as the sum of all individual
    amounts, whatever their currencies (a correct CtrlSum was refused AM10: a tester)."""
    found = tx.find(_EQUIVALENT)
    return (found.text or "").strip() if found is not None else ""


def _add(total: Decimal, text: str) -> Decimal:
    try:
        return total + Decimal(text)
    except InvalidOperation:
        return total


def stream(
    blocks: Iterable[bytes], *, transactions_max: int, chunk_size: int = chunk_transactions
) -> Iterator[Event]:
    """Parse and validate the file given as `blocks` of its bytes, yielding what it holds
    in order; the last item is always the `ParsedFile` summary, carrying a FF01 finding
    (and what could be read of its group header) if the file is unusable."""
    result = ParsedFile()
    head = _Head()
    try:
        yield from _events(head.keep(blocks), transactions_max, chunk_size, result)
    except _Stop as stop:
        result.failure = stop.finding
    except etree.XMLSyntaxError as exc:
        result.failure = Finding(Reason.FF01, _describe(exc))
    if result.failure is None and result.header is None:
        result.failure = Finding(Reason.FF01, "no group header")
    if result.failure is not None:
        result.echo = safe_xml.echo(head.data)
    yield result


class _Head:
    """Keeps the first `echo_bytes_max` bytes of what passes through, for `safe_xml.echo`."""

    def __init__(self) -> None:
        self.data = b""

    def keep(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            if len(self.data) < safe_xml.echo_bytes_max:
                self.data += block[: safe_xml.echo_bytes_max - len(self.data)]
            yield block


# lxml quotes some of libxml2's messages as Python bytes (`line 2: b'Invalid bytes…'`)
_BYTES_REPR = re.compile(r"""\bb(['"])(.*)\1$""")


def _describe(exc: etree.XMLSyntaxError) -> str:
    text = str(exc.msg if hasattr(exc, "msg") and exc.msg else exc)
    text = _BYTES_REPR.sub(r"\2", text.replace(_N, ""))  # the message, not its repr
    if "Document is empty" in text or "Start tag expected" in text:
        return f"not XML: {text}"
    if "Invalid bytes in character encoding" in text:
        return f"not UTF-8 (nor the US-ASCII it may declare): {text}"
    if "Premature end of data" in text:
        return f"not well-formed: the document ends before </Document> ({text})"
    return f"not well-formed or not valid against {MESSAGE}: {text}"


prolog_bytes_max = 1 << 20  # bytes before the root element


def _check_encoding(head: bytes) -> None:
    problem = safe_xml.encoding_problem(head)
    if problem is not None:
        raise _Stop(Finding(Reason.FF01, problem))


# A transaction (or payment information) must end within this much of the file. The
# schema bounds neither `RmtInf/Ustrd` nor `Strd`, so one valid transaction could hold
# a whole upload, and the tree holds a transaction until it ends: ~10 bytes of memory
# per byte of XML. A real one, even with hundreds of structured remittances, is < 1 MB.
stall_bytes_max = 4 << 20


def _events(
    blocks: Iterable[bytes], transactions_max: int, chunk_size: int, result: ParsedFile
) -> Iterator[Event]:
    """Feed the file to a pull parser block by block; after each block, take the
    transactions it completed out of the tree (`_Harvest`).

    The parser reports only where a payment information starts: listening for every
    element's end (`iterparse`) costs an event per element. Children of a
    payment information are complete but for the last one, which may still be being
    parsed. Schema errors are reported when the parser is closed; until then the file
    is only read, never trusted (see `stream`).

    Entities: a DTD is refused at the root (`_check_root`), so only XML's five predefined
    ones and character references exist; `"internal"` resolves just those. (`False`
    together with a schema made lxml accept a document cut short without an error.)
    """
    parser = safe_xml.pull_parser(events=("start",), tag=(_T_PMTINF,), schema=schema())
    harvest = _Harvest(result, transactions_max, chunk_size)
    fed = progress_at = 0  # bytes parsed; … when a transaction or payment information began
    progress = (0, 0)
    tail = b""  # the file's last bytes: does it end with the document's end tag?
    for block in _after_root_check(blocks):
        parser.feed(block)
        fed += len(block)
        tail = (tail + block[-_TAIL_BYTES:])[-_TAIL_BYTES:]
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
    if not fed:
        raise _Stop(Finding(Reason.FF01, "the file is empty"))
    cut_short = Finding(Reason.FF01, "not well-formed: the document ends before </Document>")
    try:
        root = parser.close()  # raises if the file is not well-formed, complete and valid
    except etree.XMLSyntaxError:
        # A file cut short is said to be, rather than what the schema (or libxml2) makes
        # of the tag cut in two at its end: "Element 'CdtrAg': This element is not
        # expected" sent a client looking for a schema mistake (a tester). Told by its
        # last bytes: asking the parser for the end of every element slows the parse.
        if _DOCUMENT_END.search(tail) is None:
            raise _Stop(cut_short) from None
        raise
    if root is None or root.tag != _T_DOC:
        raise _Stop(cut_short)
    yield from harvest.take(final=True)
    if harvest.chunk:
        yield harvest.chunk
    harvest.ended()
    result.count = harvest.seq


# A document's end: its end tag (with any prefix), then only white space, comments or
# processing instructions.
_DOCUMENT_END = re.compile(rb"</(?:[\w.-]+:)?Document\s*>(?:\s|<!--.*?-->|<\?.*?\?>)*\Z", re.S)
_TAIL_BYTES = 4096


def _after_root_check(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks, once the prolog and root element have been looked at on their own —
    encoding, DTD, namespace — by a parser that resolves no entity at all: nothing of a
    file with a DTD ever reaches the parser that resolves XML's predefined entities."""
    looker = safe_xml.looking_parser()
    held: list[bytes] = []
    size = 0
    for block in blocks:
        if looker is not None:
            if not held:
                _check_encoding(block[: safe_xml.prolog_bytes])
            held.append(block)
            size += len(block)
            root = safe_xml.root_element(looker, block)
            if root is None:
                if size > prolog_bytes_max:
                    problem = (  # (a start tag of 20 MB of attributes was "no root element")
                        f"the root element's start tag does not end within the first "
                        f"{prolog_bytes_max} bytes (what comes before it, and the tag with its "
                        "attributes and namespace declarations, must fit in them)"
                    )
                    raise _Stop(Finding(Reason.FF01, problem))
                continue
            _check_root(root)
            looker = None
            yield from held
            held = []
            continue
        yield block
    yield from held  # a file that ended before its root element: the parser says what is wrong


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
        self.pmt_inf_ids: set[str] = set()  # each names one payment information (ISO)

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
            self.ended()
            done = self.elem
            done.clear()
            parent.remove(done)
        self.elem = elem
        self.record = None
        self.started += 1

    def ended(self) -> None:
        """The payment information read has ended: its totals added to the file's, its
        record let go — kept only if the totals it declared are not its own (AM18, AM10:
        `ParsedFile`)."""
        record, result = self.record, self.result
        if record is not None:
            result.pmt_inf_count += 1
            result.amount_sum += record.amount_sum
            if record.totals_differ():
                result.payment_infos.append(record)
            self.record = None

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
            self.record = _pmt_inf(elem, self.result.pmt_inf_count)
            if self.record.pmt_inf_id in self.pmt_inf_ids:  # its answers could not tell them apart
                why = f"PmtInfId {self.record.pmt_inf_id} names two payment informations"
                raise _Stop(Finding(Reason.FF01, why))
            self.pmt_inf_ids.add(self.record.pmt_inf_id)
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
            total = _add(total, row[_AMOUNT] or _equivalent(child))
            seq += 1
            if len(chunk) >= self.chunk_size:
                yield chunk
                chunk = self.chunk = []
        self.seq = seq
        record.count += seq - started
        record.amount_sum = total
        # Free what was read (the header too, once it is in `record`). Without proxies
        # of its elements alive, lxml frees them outright instead of moving each
        # subtree to a document of its own.
        children = child = None
        del elem[:stop]
