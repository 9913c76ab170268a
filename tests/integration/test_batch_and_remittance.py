"""Batch booking as ISO means it, and remittance as the payer sent it (SPEC §6).

A payment information with `BtchBookg` true is ONE debit of the sum of its executed
payments on the debtor's statement, with a TxDtls per payment — also when its creditors
are treasury accounts, each of which sees its own credit. Structured remittance (a
creditor reference with its type and issuer, the invoices paid) reaches both sides'
statements as `Strd`, beside the `Ustrd` lines, where off-the-shelf statement readers
(pycamt, ofxstatement-iso20022) find the creditor reference to match on.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from lxml import etree
from ofxstatement.plugins.iso20022 import Iso20022Parser
from pycamt.parser import Camt053Parser
from sqlalchemy import func, select

from gateway.samples import SampleStrd
from ledger import schema
from tests.integration.test_statements import (
    CAMT053,
    CLIENT_B,
    DMCT_RECEIVED,
    DMCT_SENT,
    FUNDING,
    close_day,
    refs,
    statements_of,
)
from tests.pipeline_fixtures import A_MAIN, A_SMALL, B_MAIN, TODAY, Batch, Installation

NS053 = {"c": f"urn:iso:std:iso:20022:tech:xsd:{CAMT053}"}
REFERENCE = "RF18539007547034"
INVOICES = (("INV-2026-118", "2026-11-20", "70.00"), ("INV-2026-119", "2026-11-21", "50.00"))


def test_batch_booked_payments_to_treasury_accounts_are_one_debit(
    inst: Installation, assert_valid: object
) -> None:
    """Three payments of one batch-booked payment information to two treasury accounts:
    the debtor sees one debit of 60.00 with three TxDtls (each with its own AcctSvcrRef),
    each creditor one credit of what it received; the ledger holds one transfer with one
    debit posting and a credit posting per creditor account."""
    data = (
        Batch(msg_id="INT-BATCH")
        .tx("I-1", "10.00", creditor=B_MAIN, creditor_name="Iestāde B")
        .tx("I-2", "20.00", creditor=A_SMALL, creditor_name="Iestāde A")
        .tx("I-3", "30.00", creditor=B_MAIN, creditor_name="Iestāde B")
        .build()
    )
    accepted = refs(inst.submit(data))
    assert len(set(accepted.values())) == 3  # each payment keeps its own AcctSvcrRef
    with inst.env.engine.connect() as conn:
        transfers = conn.execute(
            select(schema.transfers.c.id).where(schema.transfers.c.kind != "funding")
        ).all()
        legs = conn.execute(
            select(func.count()).where(schema.postings.c.transfer_id == transfers[0][0])
        ).scalar_one()
    assert len(transfers) == 1 and legs == 3  # A −60.00; B +40.00; A_SMALL +20.00
    close_day(inst, TODAY)
    ours = statements_of(inst, validate=assert_valid)  # type: ignore[arg-type]
    (debit,) = [e for e in ours[(A_MAIN, TODAY)].entries if not e.credit]
    assert (debit.amount_minor, debit.code) == (6000, DMCT_SENT)
    assert debit.batch is not None and debit.batch[1:] == ("INT-BATCH-P1", 3, 6000)
    assert [(d.end_to_end_id, d.acct_svcr_ref, d.amount_minor) for d in debit.details] == [
        ("I-1", accepted["I-1"], 1000),
        ("I-2", accepted["I-2"], 2000),
        ("I-3", accepted["I-3"], 3000),
    ]
    (small,) = [e for e in ours[(A_SMALL, TODAY)].entries if e.credit and e.code != FUNDING]
    assert [d.end_to_end_id for d in small.details] == ["I-2"] and small.amount_minor == 2000
    theirs = statements_of(inst, CLIENT_B, assert_valid)  # type: ignore[arg-type]
    (credit,) = [e for e in theirs[(B_MAIN, TODAY)].entries if e.credit and e.code != FUNDING]
    assert (credit.amount_minor, credit.code) == (4000, DMCT_RECEIVED)
    assert credit.acct_svcr_ref == debit.acct_svcr_ref  # the one transfer
    assert [(d.end_to_end_id, d.counterparty_iban) for d in credit.details] == [
        ("I-1", A_MAIN),
        ("I-3", A_MAIN),
    ]


def _strd_of(path: object, e2e: str) -> etree._Element:
    root = etree.parse(str(path)).getroot()
    (tx,) = root.xpath(f"//c:TxDtls[c:Refs/c:EndToEndId='{e2e}']", namespaces=NS053)
    return tx.find("c:RmtInf", NS053)


def test_payments_booked_on_their_own_keep_their_entries_and_share_the_clearing_posting(
    inst: Installation, assert_valid: object
) -> None:
    """`BtchBookg` false: each payment is an entry of its own on the debtor's statement (and
    on a treasury creditor's), a posting under its own reference; the payments leaving
    the treasury credit the clearing account in ONE posting of their sum (SPEC §6: booked
    against it), so the ledger holds a posting per payment and one more per payment to a
    treasury account, not two per payment."""
    data = (
        Batch(msg_id="OWN-1", batch_booking=False)
        .tx("O-1", "10.00")
        .tx("O-2", "20.00", creditor=B_MAIN, creditor_name="Iestāde B")
        .tx("O-3", "30.00")
        .build()
    )
    accepted = refs(inst.submit(data))
    with inst.env.engine.connect() as conn:
        p, a = schema.postings.c, schema.accounts.c
        legs = conn.execute(
            select(a.iban, a.kind, p.amount_minor, p.reference)
            .select_from(schema.postings.join(schema.accounts, a.id == p.account_id))
            .join(schema.transfers, schema.transfers.c.id == p.transfer_id)
            .where(schema.transfers.c.kind != "funding")
            .order_by(p.id)
        ).all()
    mine = [(leg.amount_minor, leg.reference) for leg in legs if leg.iban == A_MAIN]
    assert mine == [(-1000, accepted["O-1"]), (-2000, accepted["O-2"]), (-3000, accepted["O-3"])]
    assert [(leg.amount_minor, leg.reference) for leg in legs if leg.iban == B_MAIN] == [
        (2000, accepted["O-2"])
    ]
    clearing = [leg for leg in legs if leg.kind == "clearing"]
    assert [(leg.amount_minor, leg.reference) for leg in clearing] == [(4000, None)]
    assert len(legs) == 5
    close_day(inst, TODAY)
    ours = statements_of(inst, validate=assert_valid)  # type: ignore[arg-type]
    debits = [e for e in ours[(A_MAIN, TODAY)].entries if not e.credit]
    assert sorted((e.acct_svcr_ref, e.amount_minor) for e in debits) == sorted(
        [(accepted["O-1"], 1000), (accepted["O-2"], 2000), (accepted["O-3"], 3000)]
    )


def _remittance_on_both_statements(
    inst: Installation, data: bytes, e2e: str, assert_valid: object
) -> list[etree._Element]:
    """The one payment of `data`, booked today from A to B: its RmtInf on the payer's and
    on the payee's statement of the day."""
    assert inst.submit(data).statuses() == {e2e: "ACSC"}
    close_day(inst, TODAY)
    payer = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]  # type: ignore[arg-type]
    payee = statements_of(inst, CLIENT_B, assert_valid)[(B_MAIN, TODAY)]  # type: ignore[arg-type]
    return [_strd_of(report.path, e2e) for report in (payer, payee)]


def _prefixed(data: bytes) -> bytes:
    """The same pain.001 written as some ERPs write it: every element with the prefix
    `ns2:` for the pain.001 namespace instead of the default namespace."""
    data = data.replace(b' xmlns="urn:', b' xmlns:ns2="urn:', 1)
    return re.sub(rb"<(/?)([A-Za-z])", rb"<\1ns2:\2", data)


@pytest.mark.parametrize("written", ["default namespace", "prefix ns2"])
def test_structured_remittance_reaches_both_statements_as_sent(
    inst: Installation, assert_valid: object, written: str
) -> None:
    """A payment with two Ustrd lines (blanks kept) and a Strd block (creditor reference
    RF… of type SCOR issued by ISO, two invoices and their total) appears on the payer's
    and the payee's statement with both Ustrd lines and the Strd block, element for
    element, in the statement's namespace however the pain.001 named its own."""
    structured = SampleStrd(creditor_reference=REFERENCE, invoices=INVOICES)
    data = (
        Batch(msg_id="STRD-1", batch_booking=False)
        .tx("S-1", "120.00", creditor=B_MAIN, remittance="Rēķini 118 un 119\n Līgums 7/2026  ",
            structured=(structured,))
        .build()
    )  # fmt: skip
    if written == "prefix ns2":
        data = _prefixed(data)
        assert b"<ns2:Strd>" in data
    for rmt in _remittance_on_both_statements(inst, data, "S-1", assert_valid):
        assert rmt.xpath("c:Ustrd/text()", namespaces=NS053) == [
            "Rēķini 118 un 119",
            " Līgums 7/2026  ",
        ]
        (strd,) = rmt.findall("c:Strd", NS053)
        assert strd.xpath("c:CdtrRefInf/c:Ref/text()", namespaces=NS053) == [REFERENCE]
        assert strd.xpath("c:CdtrRefInf/c:Tp/c:CdOrPrtry/c:Cd/text()", namespaces=NS053) == [
            "SCOR"
        ]
        assert strd.xpath("c:CdtrRefInf/c:Tp/c:Issr/text()", namespaces=NS053) == ["ISO"]
        assert strd.xpath("c:RfrdDocInf/c:Nb/text()", namespaces=NS053) == [
            "INV-2026-118",
            "INV-2026-119",
        ]
        assert strd.xpath("c:RfrdDocInf/c:RltdDt/text()", namespaces=NS053) == [
            "2026-11-20",
            "2026-11-21",
        ]
        assert strd.xpath("c:RfrdDocAmt/c:RmtdAmt/text()", namespaces=NS053) == ["120.00"]


def test_ustrd_lines_with_line_breaks_of_their_own_reach_the_statements_as_sent(
    inst: Installation, assert_valid: object
) -> None:
    """Each Ustrd is one line of the statement's RmtInf however it is written: one holding
    a line feed stays one (it was split in two), one holding only a line feed is kept (it
    was dropped), and a carriage return stays one (written raw, a reader takes it for a
    line feed)."""
    data = (
        Batch(msg_id="LINES-1", batch_booking=False)
        .tx("L-1", "12.00", creditor=B_MAIN, remittance="FIRST\nSECOND\nTHIRD")
        .build()
    )
    data = data.replace(b"<Ustrd>FIRST</Ustrd>", b"<Ustrd>line&#10;break</Ustrd>")
    data = data.replace(b"<Ustrd>SECOND</Ustrd>", b"<Ustrd>&#10;</Ustrd>")
    data = data.replace(b"<Ustrd>THIRD</Ustrd>", b"<Ustrd>a&#13;b</Ustrd>")
    assert data.count(b"<Ustrd>") == 3
    for rmt in _remittance_on_both_statements(inst, data, "L-1", assert_valid):
        assert rmt.xpath("c:Ustrd/text()", namespaces=NS053) == ["line\nbreak", "\n", "a\rb"]


def test_statement_readers_find_the_creditor_reference(
    inst: Installation, assert_valid: object
) -> None:
    """A payee's reconciliation reads the creditor reference from our camt.053 with
    off-the-shelf readers: pycamt's remittance information and ofxstatement-iso20022's
    check number are the RF reference the payer sent."""
    structured = SampleStrd(creditor_reference=REFERENCE)
    data = (
        Batch(msg_id="STRD-2", batch_booking=False)
        .tx("S-2", "15.00", creditor=B_MAIN, remittance=None, structured=(structured,))
        .build()
    )
    assert inst.submit(data).statuses() == {"S-2": "ACSC"}
    close_day(inst, TODAY)
    payee = statements_of(inst, CLIENT_B, assert_valid)[(B_MAIN, TODAY)]  # type: ignore[arg-type]
    rows = Camt053Parser.from_file(payee.path).get_transactions()
    assert [r.get("RemittanceInformation") for r in rows if r.get("EndToEndId") == "S-2"] == [
        REFERENCE
    ]
    statement = Iso20022Parser(str(payee.path)).parse()
    credited = [line for line in statement.lines if line.amount == 15]
    assert [(line.check_no, line.memo) for line in credited] == [(REFERENCE, REFERENCE)]
    assert credited[0].date is not None and credited[0].date.date() == dt.date(2026, 11, 25)


def _with_parties(data: bytes) -> bytes:
    """`data` with what ERPs send beside the accounts: the payment information's
    ultimate debtor (paying on behalf of another institution), U-1's ultimate creditor and
    its purpose code, U-2's own ultimate debtor and a proprietary purpose."""
    text = data.decode()
    text = text.replace("</DbtrAgt>", "</DbtrAgt><UltmtDbtr><Nm>Skola Nr. 7</Nm></UltmtDbtr>")
    u1, u2 = text.split("<EndToEndId>U-2</EndToEndId>")
    u1 = u1.replace(
        "</CdtrAcct>",
        "</CdtrAcct><UltmtCdtr><Nm>Galīgais saņēmējs</Nm></UltmtCdtr><Purp><Cd>SUPP</Cd></Purp>",
    )
    u2 = u2.replace("</Amt>", "</Amt><UltmtDbtr><Nm>Bērnudārzs</Nm></UltmtDbtr>", 1).replace(
        "</CdtrAcct>", "</CdtrAcct><Purp><Prtry>STIPENDIJA</Prtry></Purp>", 1
    )
    return (u1 + "<EndToEndId>U-2</EndToEndId>" + u2).encode()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_ultimate_parties_and_purpose_reach_both_statements(
    request: pytest.FixtureRequest, assert_valid: object, database: str
) -> None:
    """SPEC §8, counterparty information: the ultimate debtor (of the payment information,
    or the payment's own) and creditor and the purpose a payment was sent with appear in
    its TxDtls on the payer's and on the payee's statement (`RltdPties/UltmtDbtr`,
    `UltmtCdtr`, `Purp`); they were dropped (tester B, stop 45). On PostgreSQL too, whose
    bulk inserts leave out a column no row has."""
    if database == "postgresql":
        base = request.getfixturevalue("tmp_path") / "gw"
        inst = Installation.create(base, database_url=request.getfixturevalue("pg_url"))
        request.addfinalizer(inst.close)
    else:
        inst = request.getfixturevalue("inst")
    data = _with_parties(
        Batch(msg_id="ULT-1", batch_booking=False)
        .tx("U-1", "10.00", creditor=B_MAIN)
        .tx("U-2", "5.00", creditor=B_MAIN)
        .build()
    )
    assert inst.submit(data).statuses() == {"U-1": "ACSC", "U-2": "ACSC"}
    close_day(inst, TODAY)
    payer = statements_of(inst, validate=assert_valid)[(A_MAIN, TODAY)]  # type: ignore[arg-type]
    payee = statements_of(inst, CLIENT_B, assert_valid)[(B_MAIN, TODAY)]  # type: ignore[arg-type]
    for report, other in ((payer, "Cdtr"), (payee, "Dbtr")):
        root = etree.parse(str(report.path)).getroot()

        def text(e2e: str, path: str, root: etree._Element = root) -> list[str]:
            (tx,) = root.xpath(f"//c:TxDtls[c:Refs/c:EndToEndId='{e2e}']", namespaces=NS053)
            return tx.xpath(f"{path}/text()", namespaces=NS053)  # type: ignore[no-any-return]

        assert text("U-1", "c:RltdPties/c:UltmtDbtr/c:Nm") == ["Skola Nr. 7"]
        assert text("U-1", "c:RltdPties/c:UltmtCdtr/c:Nm") == ["Galīgais saņēmējs"]
        assert text("U-1", "c:Purp/c:Cd") == ["SUPP"]
        assert text("U-2", "c:RltdPties/c:UltmtDbtr/c:Nm") == ["Bērnudārzs"]
        assert text("U-2", "c:RltdPties/c:UltmtCdtr") == [] and text("U-2", "c:Purp/c:Cd") == []
        assert text("U-2", "c:Purp/c:Prtry") == ["STIPENDIJA"]
        assert text("U-1", f"c:RltdPties/c:{other}Acct/c:Id/c:IBAN") == [
            B_MAIN if other == "Cdtr" else A_MAIN
        ]
