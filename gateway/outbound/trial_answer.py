"""The pain.002 of a file's run made the answer to its trial (SPEC §15), in one streaming
pass: the report is read as it inflates and written as it compresses, one payment
information's part at a time, so that the trial of a million payments holds about one
transaction at once (read whole into a tree, the report took many times its size).

What changes (`gateway.trialrun`'s module docstring says why): a MsgId of its own; what
would execute now `ACCP` instead of `ACSC`; no `AcctSvcrRef` (nothing was booked); a
`StsRsnInf` at group level saying it is a trial (and what signatures it would need —
reported, not required: the statuses stay what the payments would get once signed — and
more to say of a container's signatures).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from lxml import etree

from gateway.outbound import outbox, pain002_v03, xmlwrite
from gateway.reasons import Reason

TRIAL_INFO = "trial run, nothing executed"
_URI = f"urn:iso:std:iso:20022:tech:xsd:{pain002_v03.MESSAGE}"
_NS = "{" + _URI + "}"
# OrgnlGrpInfAndSts children before StsRsnInf (pain.002.001.03)
_BEFORE_REASONS = {
    _NS + name
    for name in ("OrgnlMsgId", "OrgnlMsgNmId", "OrgnlCreDtTm", "OrgnlNbOfTxs", "OrgnlCtrlSum")
} | {_NS + "GrpSts"}
# Elements written tag by tag as they stream by (with the root); their children whole.
_STREAMED = {_NS + "CstmrPmtStsRpt", _NS + "OrgnlPmtInfAndSts"}
_STATUSES = tuple(_NS + tag for tag in ("GrpSts", "PmtInfSts", "TxSts", "DtldSts"))
_OWN_DECLARATION = f' xmlns="{_URI}"'  # what a child serialized alone repeats
inflate_block_bytes = 1 << 16


def trial_answer(
    report: bytes, msg_id: str, waits: str | None = None, note: str | None = None,
    codes: Sequence[Reason] = (),
) -> bytes:
    """The compressed pain.002 `report` of a file's run as the compressed answer to its
    trial; `waits`: the signatures the batch would need (reported, not required);
    `note`: more to say at group level (a container's signatures), `codes` their reasons
    as in/ would give them (SPEC §15: "rejections as usual")."""

    def write(out: Any) -> None:
        out.write(xmlwrite.DECLARATION)  # ours (lxml's has single quotes)
        for event, elem in _events(report):
            parent = elem.getparent()
            if parent is None or elem.tag in _STREAMED:
                out.write(_tag(elem, start=event == "start"))
            elif event == "end" and parent.tag in _STREAMED:
                made = _made_trial(elem, msg_id, waits, note, codes)
                text = etree.tostring(made, encoding="unicode")
                out.write(text.replace(_OWN_DECLARATION, "", 1).encode())
                elem.clear()
                parent.remove(elem)

    return outbox.render(write)


def _events(report: bytes) -> Iterator[tuple[str, Any]]:
    """Start and end events of the compressed document `report`, inflated a block at a
    time."""
    parser = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, huge_tree=True
    )
    inflate = zlib.decompressobj()
    data = report
    while data:
        parser.feed(inflate.decompress(data, inflate_block_bytes))
        data = inflate.unconsumed_tail
        yield from parser.read_events()
    parser.feed(inflate.flush())
    parser.close()
    yield from parser.read_events()


def _tag(elem: Any, *, start: bool) -> bytes:
    local = etree.QName(elem).localname
    if not start:
        return f"</{local}>".encode()
    declared = "".join(
        f' xmlns="{uri}"' if prefix is None else f' xmlns:{prefix}="{uri}"'
        for prefix, uri in (elem.nsmap.items() if elem.getparent() is None else ())
    )
    return f"<{local}{declared}>".encode()


def _made_trial(
    elem: Any, msg_id: str, waits: str | None, note: str | None, codes: Sequence[Reason]
) -> Any:
    for status in elem.iter(*_STATUSES):
        if status.text == "ACSC":
            status.text = "ACCP"
    for ref in list(elem.iter(_NS + "AcctSvcrRef")):
        ref.getparent().remove(ref)
    if elem.tag == _NS + "GrpHdr":
        header = elem.find(_NS + "MsgId")
        assert header is not None, "a pain.002 without its MsgId"
        header.text = msg_id
    elif elem.tag == _NS + "OrgnlGrpInfAndSts":
        _say_trial(elem, waits, note, codes)
    return elem


def _say_trial(
    group: Any, waits: str | None, note: str | None, codes: Sequence[Reason]
) -> None:
    at = max(i for i, child in enumerate(group) if child.tag in _BEFORE_REASONS) + 1
    reason = etree.Element(_NS + "StsRsnInf")
    etree.SubElement(reason, _NS + "AddtlInf").text = TRIAL_INFO
    for line in xmlwrite.wrap(note, xmlwrite.additional_info_chars_max) if note else ():
        etree.SubElement(reason, _NS + "AddtlInf").text = line
    if waits is not None:
        for line in xmlwrite.wrap(waits + "; once signed, each payment as below", 105):
            etree.SubElement(reason, _NS + "AddtlInf").text = line
    group.insert(at, reason)
    for offset, code in enumerate(codes, start=1):  # after the trial's words, as in/'s are
        coded = etree.Element(_NS + "StsRsnInf")
        etree.SubElement(etree.SubElement(coded, _NS + "Rsn"), _NS + "Cd").text = code.value
        group.insert(at + offset, coded)
