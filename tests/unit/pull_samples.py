"""Realistic requests of the pull side, built with lxml the way a client's ERP would.

Each builder returns the `Document` element; `to_bytes` makes the file a client
uploads. Tests change a sample's tree (or its bytes) to make each bad case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

CLIENT = "Budžeta iestāde A"
OWN_IBAN = "LV31TREL9100000000001"
TREASURY_BIC = "TRELLV22"


def ns(message: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:{message}"


class Maker:
    """`m.el(parent, "Tag", text)` in one message's namespace."""

    def __init__(self, message: str) -> None:
        self.namespace = ns(message)

    def root(self) -> etree._Element:
        return etree.Element(f"{{{self.namespace}}}Document", nsmap={None: self.namespace})

    def el(
        self, parent: etree._Element, tag: str, text: str | None = None, **attrib: str
    ) -> etree._Element:
        elem = etree.SubElement(parent, f"{{{self.namespace}}}{tag}", attrib)
        if text is not None:
            elem.text = text
        return elem


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- camt.060: account reporting request ---------------------------------------------


@dataclass(frozen=True)
class Wanted:
    message: str = "camt.053.001.02"
    iban: str | None = OWN_IBAN
    from_date: str | None = "2026-11-23"
    to_date: str | None = "2026-11-25"
    from_time: str | None = "00:00:00"
    to_time: str | None = "23:59:59"
    request_id: str | None = "R1"


def camt060(
    version: str = "05", wanted: Sequence[Wanted] = (Wanted(),), msg_id: str = "REQ-20261126-01"
) -> etree._Element:
    """camt.060.001.03 (`version="03"`) or .05: one RptgReq per `Wanted`."""
    m = Maker(f"camt.060.001.{version}")
    bic = "BICFI"  # in both versions (FinancialInstitutionIdentification8 and 18)
    root = m.root()
    request = m.el(root, "AcctRptgReq")
    header = m.el(request, "GrpHdr")
    m.el(header, "MsgId", msg_id)
    m.el(header, "CreDtTm", "2026-11-26T08:15:00+02:00")
    m.el(m.el(m.el(header, "MsgSndr"), "Pty"), "Nm", CLIENT)
    for want in wanted:
        item = m.el(request, "RptgReq")
        if want.request_id is not None:
            m.el(item, "Id", want.request_id)
        m.el(item, "ReqdMsgNmId", want.message)
        if want.iban is not None:
            m.el(m.el(m.el(item, "Acct"), "Id"), "IBAN", want.iban)
        m.el(m.el(m.el(item, "AcctOwnr"), "Pty"), "Nm", CLIENT)
        m.el(m.el(m.el(item, "AcctSvcr"), "FinInstnId"), bic, TREASURY_BIC)
        if want.from_date is not None:
            period = m.el(item, "RptgPrd")
            dates = m.el(period, "FrToDt")
            m.el(dates, "FrDt", want.from_date)
            if want.to_date is not None:
                m.el(dates, "ToDt", want.to_date)
            if want.from_time is not None:
                times = m.el(period, "FrToTm")
                m.el(times, "FrTm", want.from_time)
                if want.to_time is not None:
                    m.el(times, "ToTm", want.to_time)
            m.el(period, "Tp", "ALLL")
    return root


# -- camt.055: customer payment cancellation request ---------------------------------


@dataclass(frozen=True)
class CancelTx:
    end_to_end_id: str | None = "E2E-0001"
    instr_id: str | None = "INSTR-0001"
    cancellation_id: str | None = "CXL-TX-1"
    amount: str | None = "120.50"
    currency: str = "EUR"
    requested_date: str | None = "2026-12-01"
    reason: str | None = "DUPL"
    debtor_iban: str | None = None  # OrgnlTxRef/DbtrAcct


@dataclass(frozen=True)
class CancelPmtInf:
    pmt_inf_id: str = "PMT-1"
    cancellation_id: str | None = "CXL-PMT-1"
    whole: bool | None = None
    transactions: Sequence[CancelTx] = (CancelTx(),)
    group_here: bool = False  # OrgnlGrpInf inside the payment information


def camt055(
    version: str = "09",
    *,
    msg_id: str = "CXL-20261126-01",
    original_msg_id: str = "ERP-20261125-7",
    group_level: bool = True,
    whole_group: bool | None = False,
    payment_infos: Sequence[CancelPmtInf] = (CancelPmtInf(),),
    reason_text: str | None = "entered twice",
) -> etree._Element:
    """camt.055.001.01 (`version="01"`) or .09 cancelling what `payment_infos` name."""
    m = Maker(f"camt.055.001.{version}")
    bic = "BIC" if version == "01" else "BICFI"
    root = m.root()
    request = m.el(root, "CstmrPmtCxlReq")
    assignment = m.el(request, "Assgnmt")
    m.el(assignment, "Id", msg_id)
    m.el(m.el(m.el(assignment, "Assgnr"), "Pty"), "Nm", CLIENT)
    m.el(m.el(m.el(m.el(assignment, "Assgne"), "Agt"), "FinInstnId"), bic, TREASURY_BIC)
    m.el(assignment, "CreDtTm", "2026-11-26T09:30:00+02:00")
    underlying = m.el(request, "Undrlyg")
    if group_level:
        group = m.el(underlying, "OrgnlGrpInfAndCxl")
        m.el(group, "GrpCxlId", "CXL-GRP-1")
        m.el(group, "OrgnlMsgId", original_msg_id)
        m.el(group, "OrgnlMsgNmId", "pain.001.001.03")
        m.el(group, "OrgnlCreDtTm", "2026-11-25T21:04:11+02:00")
        if whole_group is not None:
            m.el(group, "GrpCxl", "true" if whole_group else "false")
        if reason_text is not None and whole_group:
            info = m.el(group, "CxlRsnInf")
            m.el(m.el(info, "Rsn"), "Cd", "CUST")
            m.el(info, "AddtlInf", reason_text)
    for pmt in payment_infos:
        node = m.el(underlying, "OrgnlPmtInfAndCxl")
        if pmt.cancellation_id is not None:
            m.el(node, "PmtCxlId", pmt.cancellation_id)
        m.el(node, "OrgnlPmtInfId", pmt.pmt_inf_id)
        if pmt.group_here:
            original = m.el(node, "OrgnlGrpInf")
            m.el(original, "OrgnlMsgId", original_msg_id)
            m.el(original, "OrgnlMsgNmId", "pain.001.001.03")
        if pmt.whole is not None:
            m.el(node, "PmtInfCxl", "true" if pmt.whole else "false")
        for tx in pmt.transactions:
            item = m.el(node, "TxInf")
            if tx.cancellation_id is not None:
                m.el(item, "CxlId", tx.cancellation_id)
            if tx.instr_id is not None:
                m.el(item, "OrgnlInstrId", tx.instr_id)
            if tx.end_to_end_id is not None:
                m.el(item, "OrgnlEndToEndId", tx.end_to_end_id)
            if tx.amount is not None:
                m.el(item, "OrgnlInstdAmt", tx.amount, Ccy=tx.currency)
            if tx.requested_date is not None:
                if version == "01":
                    m.el(item, "OrgnlReqdExctnDt", tx.requested_date)
                else:
                    m.el(m.el(item, "OrgnlReqdExctnDt"), "Dt", tx.requested_date)
            if tx.reason is not None:
                info = m.el(item, "CxlRsnInf")
                m.el(m.el(info, "Rsn"), "Cd", tx.reason)
                if reason_text is not None:
                    m.el(info, "AddtlInf", reason_text)
            if tx.debtor_iban is not None:
                account = m.el(m.el(item, "OrgnlTxRef"), "DbtrAcct")
                m.el(m.el(account, "Id"), "IBAN", tx.debtor_iban)
    return root


# -- hostile and broken files (SPEC §6's list, for every inbound message) ------------


def hostile(good: bytes, message: str) -> dict[str, bytes]:
    """Bad versions of the valid file `good` of `message`, by name."""
    body = good.split(b"?>", 1)[1]  # the document without its declaration
    namespace = ns(message).encode()
    laughs = b"".join(
        b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">'
        % ((i,) + (i - 1,) * 10)
        for i in range(1, 10)
    )
    return {
        "empty": b"",
        "not XML": b"%PDF-1.7 not a request at all",
        "binary": bytes(range(256)) * 4,
        "DTD": b'<?xml version="1.0"?><!DOCTYPE Document [<!ELEMENT Document ANY>]>' + body,
        "billion laughs": b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY l0 "ha">'
        + laughs
        + b']><Document xmlns="'
        + namespace
        + b'">&l9;</Document>',
        "external entity": b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY x SYSTEM'
        b' "file:///etc/passwd">]><Document xmlns="' + namespace + b'">&x;</Document>',
        "bomb after a long comment": b"<?xml version='1.0'?><!--"
        + b"x" * 100_000
        + b"--><!DOCTYPE Document [<!ENTITY l0 \"ha\">"
        + laughs
        + b"]><Document xmlns=\""
        + namespace
        + b'">&l9;</Document>',
        "DTD after a comment": b"<?xml version='1.0'?><!-- hi --><!DOCTYPE d SYSTEM"
        b' "http://127.0.0.1:9/x.dtd">' + body,
        "UTF-16": good.decode("utf-8").replace("UTF-8", "UTF-16").encode("utf-16"),
        "declared Latin-1": good.replace(b"UTF-8", b"ISO-8859-1", 1),
        "Latin-1 bytes": good.replace("ā".encode(), b"\xe2"),
        "wrong namespace": good.replace(namespace, ns("pain.001.001.03").encode()),
        "no namespace": good.replace(b' xmlns="' + namespace + b'"', b""),
        "truncated": good[: len(good) * 2 // 3],
        "cut before the end tag": good[: good.rindex(b"</Document>")],
        "undefined entity": good.replace(b"</Document>", b"&nbsp;</Document>"),
        "too deep": good.replace(b"</Document>", b"<a>" * 60 + b"</a>" * 60 + b"</Document>"),
        "too big": good.replace(b"</Document>", b"<!--" + b"x" * (10 << 20) + b"--></Document>"),
        "another root": good.replace(b"<Document", b"<Dokuments").replace(
            b"</Document>", b"</Dokuments>"
        ),
    }


def parse_back(data: bytes, document: type) -> object:
    """What we wrote, read back through the pyiso20022 model: strictly by xsdata (an
    unknown element or a value that does not convert fails), then checked against the
    model as the XSD would (`iso_model.check`, itself held to the official XSDs in
    tests/unit/test_iso_model.py). pyiso20022's own validator is not used: its module
    imports pandas."""
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig

    from gateway.inbound import iso_model

    parser = XmlParser(
        config=ParserConfig(fail_on_unknown_properties=True, fail_on_converter_warnings=True)
    )
    bound = parser.from_bytes(data, document)
    assert iso_model.check(etree.fromstring(data), document) is None
    return bound
