"""Every reason code of SPEC §6, as the client sees it in the pain.002 written into `out/`.

Each row of the table is a file an ERP could upload and the code it must get back:
file-level codes reject the whole file (group RJCT with the reason, original in
`rejected/`); transaction-level codes reject exactly the offending transaction,
named by its OrgnlEndToEndId, while a good payment information in the same file
is booked. Every answer is checked against the official pain.002 schema, and the
ledger must show exactly the booked payments and nothing of the rejected ones.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.inbound.reader import inline_bytes_max
from gateway.samples import SamplePmtInf, SampleTx
from tests.pipeline_fixtures import (
    A_BLOCKED,
    A_CLOSED,
    A_JPY,
    A_LIMITS,
    A_MAIN,
    A_SMALL,
    B_BLOCKED,
    B_CLOSED,
    B_MAIN,
    CLIENT_B,
    EXTERNAL,
    EXTERNAL_BIC,
    PAIN002,
    TODAY,
    TREL_MISSING,
    Answer,
    Batch,
    Installation,
    iban_lv,
)

NS001 = b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
NS002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"
UNKNOWN_DEBTOR = iban_lv("TREL", 9_100_000_008_888)
BAD_CHECKSUM = "LV00HABA0000001234567"


# -- the table -------------------------------------------------------------------------------


def ext(e2e: str, amount: str, **kw: object) -> SampleTx:
    """A payment to a creditor at another bank."""
    kw.setdefault("creditor_bic", EXTERNAL_BIC)
    return SampleTx(e2e, amount, EXTERNAL, **kw)  # type: ignore[arg-type]


def internal(e2e: str, amount: str, creditor: str) -> SampleTx:
    return SampleTx(e2e, amount, creditor)


GOOD = SamplePmtInf(
    pmt_inf_id="GOOD",
    debtor_iban=A_MAIN,
    transactions=[ext("GOOD-1", "1.00")],
    execution_date=TODAY.isoformat(),
)


@dataclass(frozen=True)
class TxCase:
    """A file of two payment informations: BAD (one offending payment, perhaps with
    companions) and GOOD (one booked payment from A_MAIN)."""

    name: str
    code: str
    debtor: str
    transactions: tuple[SampleTx, ...]
    culprit: str  # EndToEndId that must carry the code
    info_has: str  # what AddtlInf must name (element value)
    execution_date: str = TODAY.isoformat()
    booked: dict[str, int] = field(default_factory=dict)  # other effects: iban -> delta
    before: tuple[SampleTx, ...] = ()  # payments of an earlier file from the same debtor


TX_CASES = [
    TxCase(
        "AC02 unknown debtor account",
        "AC02",
        UNKNOWN_DEBTOR,
        (ext("X-1", "5.00"),),
        "X-1",
        UNKNOWN_DEBTOR,
    ),
    TxCase("AC02 another client's account", "AC02", B_MAIN, (ext("X-1", "5.00"),), "X-1", B_MAIN),
    TxCase("AC04 debtor account closed", "AC04", A_CLOSED, (ext("X-1", "5.00"),), "X-1", A_CLOSED),
    TxCase(
        "AC04 treasury creditor closed",
        "AC04",
        A_MAIN,
        (internal("X-1", "5.00", B_CLOSED),),
        "X-1",
        B_CLOSED,
    ),
    TxCase(
        "AC06 debtor account blocked", "AC06", A_BLOCKED, (ext("X-1", "5.00"),), "X-1", A_BLOCKED
    ),
    TxCase(
        "AC06 treasury creditor blocked",
        "AC06",
        A_MAIN,
        (internal("X-1", "5.00", B_BLOCKED),),
        "X-1",
        B_BLOCKED,
    ),
    TxCase(
        "AC01 creditor IBAN invalid",
        "AC01",
        A_MAIN,
        (SampleTx("X-1", "5.00", BAD_CHECKSUM, creditor_bic=EXTERNAL_BIC),),
        "X-1",
        BAD_CHECKSUM,
    ),
    TxCase(
        "AC01 treasury IBAN does not exist",
        "AC01",
        A_MAIN,
        (internal("X-1", "5.00", TREL_MISSING),),
        "X-1",
        TREL_MISSING,
    ),
    TxCase(
        "RC01 BIC malformed",
        "RC01",
        A_MAIN,
        (ext("X-1", "5.00", creditor_bic="HABAXX22"),),
        "X-1",
        "HABAXX22",
    ),
    TxCase(
        "AM03 currency not supported",
        "AM03",
        A_MAIN,
        (ext("X-1", "5.00", currency="XAU"),),
        "X-1",
        "XAU",
    ),
    TxCase(
        "AM03 a real currency the treasury does not keep",
        "AM03",
        A_MAIN,
        (ext("X-1", "5.00", currency="GEL"),),
        "X-1",
        "GEL",
    ),
    # The value once (it was "InstdAmt 0.00: amount must be positive: 0.00").
    TxCase(
        "AM12 amount zero",
        "AM12",
        A_MAIN,
        (ext("X-1", "0.00"),),
        "X-1",
        "InstdAmt: amount must be positive: 0.00",
    ),
    TxCase("AM12 three decimals in EUR", "AM12", A_MAIN, (ext("X-1", "1.005"),), "X-1", "1.005"),
    TxCase(
        "AM12 decimals in JPY",
        "AM12",
        A_JPY,
        (ext("X-1", "100.5", currency="JPY"),),
        "X-1",
        "100.5",
    ),
    TxCase("AM02 above max_payment", "AM02", A_LIMITS, (ext("X-1", "1000.01"),), "X-1", "1000.01"),
    TxCase(
        "AM14 daily limit exceeded",
        "AM14",
        A_LIMITS,
        (ext("X-0", "900.00"), ext("X-1", "700.00")),
        "X-1",
        "700.00",
        booked={A_LIMITS: -90000},
    ),
    TxCase(
        "AM05 EndToEndId repeated in the file",
        "AM05",
        A_MAIN,
        (ext("X-1", "5.00"), ext("X-1", "6.00")),
        "X-1#2",
        "X-1",
        booked={A_MAIN: -500},
    ),
    TxCase(
        "AM05 same payment in an earlier file",
        "AM05",
        A_MAIN,
        (ext("X-1", "7.00"),),
        "X-1",
        "X-1",
        before=(ext("X-1", "7.00"),),
    ),
    TxCase(
        "CH03 execution date too far ahead",
        "CH03",
        A_MAIN,
        (ext("X-1", "5.00"),),
        "X-1",
        (TODAY + dt.timedelta(days=91)).isoformat(),
        execution_date=(TODAY + dt.timedelta(days=91)).isoformat(),
    ),
    TxCase(
        "DT01 execution date impossible",
        "DT01",
        A_MAIN,
        (ext("X-1", "5.00"),),
        "X-1",
        "2026-02-30",
        execution_date="2026-02-30",
    ),
    TxCase("AM04 insufficient funds", "AM04", A_SMALL, (ext("X-1", "100.01"),), "X-1", "100.01"),
]


def _file(case: TxCase) -> bytes:
    bad = SamplePmtInf(
        pmt_inf_id="BAD",
        debtor_iban=case.debtor,
        transactions=list(case.transactions),
        execution_date=case.execution_date,
    )
    return Batch(msg_id="CASE-FILE", extra_pmts=[bad, GOOD]).build()


@pytest.mark.parametrize("case", TX_CASES, ids=[c.name for c in TX_CASES])
def test_transaction_reason_code(
    case: TxCase, inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """The offending payment alone is RJCT with the code and an English AddtlInf naming
    the value at fault; the good payment information of the same file is booked."""
    if case.before:
        first = inst.submit(
            Batch(
                msg_id="EARLIER",
                extra_pmts=[
                    SamplePmtInf(
                        pmt_inf_id="EARLY",
                        debtor_iban=case.debtor,
                        transactions=list(case.before),
                        execution_date=TODAY.isoformat(),
                    )
                ],
            ).build(),
            name="earlier.xml",
        )
        assert first.group_status == "ACSC"
    before = inst.balances()
    answer = inst.submit(_file(case))
    assert_valid(answer.path, PAIN002)

    culprit_e2e, _, nth = case.culprit.partition("#")
    every = answer.transactions()
    matches = [t for t in every if t.end_to_end_id == culprit_e2e]
    culprit = matches[int(nth) - 1] if nth else matches[0]
    assert culprit.status == "RJCT"
    assert culprit.reasons == [case.code]
    assert culprit.additional_info and case.info_has in " ".join(culprit.additional_info)
    assert culprit.acct_svcr_ref is None
    assert culprit.pmt_inf_id == "BAD"
    others = [t for t in every if t is not culprit]
    assert all(not t.reasons for t in others if t.status != "RJCT")
    assert all(case.code not in t.reasons for t in others)

    good = answer.tx("GOOD-1")
    assert good.status == "ACSC" and good.acct_svcr_ref
    assert answer.pmt_statuses()["GOOD"] == "ACSC"
    assert answer.pmt_statuses()["BAD"] == ("PART" if case.booked else "RJCT")
    assert answer.group_status == "PART"
    assert answer.shelf is not None and answer.shelf.parts[-4] == "archive"

    # Only GOOD-1 (1.00 from A_MAIN) and the case's own booked companions moved money.
    expected = dict(before)
    expected[A_MAIN] -= 100
    for iban, delta in case.booked.items():
        expected[iban] += delta
    expected[inst.clearing("EUR")] += 100 - sum(case.booked.values())
    assert inst.balances() == expected
    inst.env.ledger.check_invariants()
    assert answer.path.read_bytes() == report_from_rows(inst, answer)


def report_from_rows(inst: Installation, answer: Answer) -> bytes:
    """The first report of the answered file rendered again from its `gw_payments` rows,
    the way follow-up reports are: the report written while the file was decided
    must say exactly what its rows say."""
    from sqlalchemy import select

    from gateway import db
    from gateway.outbound import answers

    created = answer.doc.find(f"{{{NS002}}}CstmrPmtStsRpt/{{{NS002}}}GrpHdr/{{{NS002}}}CreDtTm")
    with inst.env.engine.connect() as conn:
        file_row = conn.execute(
            select(db.files).where(db.files.c.msg_id == answer.original_msg_id)
        ).one()
        body = answers.build_file_report(
            conn,
            file_row,
            msg_id=str(answer.msg_id),
            created_at=dt.datetime.fromisoformat(created.text),
            bic=inst.env.settings.bic,
            report_no=None,
        )
    return zlib.decompress(body)


def test_other_clients_account_and_unknown_account_look_the_same(
    inst: Installation,
) -> None:
    """A client cannot tell an account that exists for someone else from one that does
    not exist: both get AC02 with the same wording."""
    texts = []
    for n, debtor in enumerate((UNKNOWN_DEBTOR, B_MAIN)):
        bad = SamplePmtInf(
            pmt_inf_id="BAD",
            debtor_iban=debtor,
            transactions=[ext("X-1", "5.00")],
            execution_date=TODAY.isoformat(),
        )
        answer = inst.submit(
            Batch(msg_id=f"PROBE-{n}", extra_pmts=[bad]).build(), name=f"probe{n}.xml"
        )
        tx = answer.tx("X-1")
        assert tx.reasons == ["AC02"]
        texts.append(" ".join(tx.additional_info).replace(debtor, "<IBAN>"))
    assert texts[0] == texts[1]


def test_notprovided_end_to_end_ids_are_not_duplicates(inst: Installation) -> None:
    """Several payments without an EndToEndId (NOTPROVIDED) in one file are all booked,
    and the same NOTPROVIDED payment again in a later file is booked again."""
    pmt = SamplePmtInf(
        pmt_inf_id="NP",
        debtor_iban=A_MAIN,
        execution_date=TODAY.isoformat(),
        transactions=[ext("NOTPROVIDED", "3.00"), ext("NOTPROVIDED", "3.00")],
    )
    first = inst.submit(Batch(msg_id="NP-1", extra_pmts=[pmt]).build(), name="np1.xml")
    assert [t.status for t in first.transactions()] == ["ACSC", "ACSC"]
    second = inst.submit(Batch(msg_id="NP-2", extra_pmts=[pmt]).build(), name="np2.xml")
    assert [t.status for t in second.transactions()] == ["ACSC", "ACSC"]
    assert inst.balance(A_MAIN) == 10_000_000 - 4 * 300


def test_same_payment_outside_five_business_days_is_not_a_duplicate(
    template: Path, tmp_path: Path
) -> None:
    """The same payment six business days later is booked again (the AM05 window is
    five business days), while four business days later it is still AM05."""
    inst = Installation.copy_of(template, tmp_path / "gw")
    try:
        pay = SamplePmtInf(
            pmt_inf_id="P",
            debtor_iban=A_MAIN,
            execution_date="2026-11-10",
            transactions=[ext("RENT-11", "50.00")],
        )
        inst.clock.set(dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC))
        assert (
            inst.submit(
                Batch(msg_id="R-1", extra_pmts=[pmt_on(pay, "2026-11-10")]).build(), name="r1.xml"
            ).group_status
            == "ACSC"
        )
        # 10 Nov (Tue) + 4 business days = 16 Nov (Mon); 18 Nov is a holiday.
        inst.clock.set(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC))
        again = inst.submit(
            Batch(msg_id="R-2", extra_pmts=[pmt_on(pay, "2026-11-16")]).build(), name="r2.xml"
        )
        assert again.tx("RENT-11").reasons == ["AM05"]
        # 6 business days after 10 Nov: 11,12,13,16,17,19 -> 19 Nov.
        inst.clock.set(dt.datetime(2026, 11, 19, 9, 0, tzinfo=dt.UTC))
        later = inst.submit(
            Batch(msg_id="R-3", extra_pmts=[pmt_on(pay, "2026-11-19")]).build(), name="r3.xml"
        )
        assert later.tx("RENT-11").status == "ACSC"
    finally:
        inst.close()


def pmt_on(pmt: SamplePmtInf, day: str) -> SamplePmtInf:
    return SamplePmtInf(
        pmt_inf_id=pmt.pmt_inf_id,
        debtor_iban=pmt.debtor_iban,
        transactions=list(pmt.transactions),
        execution_date=day,
    )


# -- file-level codes ------------------------------------------------------------------------


def _good_pmt(nb: str | None = None, ctrl: str | None = None) -> SamplePmtInf:
    return SamplePmtInf(
        pmt_inf_id="P1",
        debtor_iban=A_MAIN,
        execution_date=TODAY.isoformat(),
        transactions=[ext("F-1", "10.00"), ext("F-2", "20.00")],
        nb_of_txs=nb,
        ctrl_sum=ctrl,
    )


def _first_with(msg_id: str) -> bytes:
    """A good file, accepted first, whose MsgId the case's file uses again."""
    first = SamplePmtInf(
        pmt_inf_id="P0",
        debtor_iban=A_MAIN,
        execution_date=TODAY.isoformat(),
        transactions=[ext("F-0", "1.00")],
    )
    return Batch(msg_id=msg_id, extra_pmts=[first]).build()


def _many(batch: Batch, count: int) -> bytes:
    """`batch` with `count` payments of 1.00: over `inline_bytes_max`, read by a child."""
    for n in range(count):
        batch.tx(f"M-{n}", "1.00")
    data = batch.build()
    assert len(data) > inline_bytes_max
    return data


@dataclass(frozen=True)
class FileCase:
    name: str
    code: str
    data: Callable[[], bytes]
    info_has: str
    before: Callable[[], bytes] | None = None


FILE_CASES = [
    FileCase(
        "FF01 not well-formed",
        "FF01",
        lambda: b"<?xml version='1.0'?><Document xmlns='" + NS001 + b"'><CstmrCdt",
        "not well-formed",
    ),
    FileCase(
        "FF01 no namespace",
        "FF01",
        lambda: b"<Document><CstmrCdtTrfInitn/></Document>",
        "namespace",
    ),
    FileCase(
        "FF01 XSD-invalid (negative amount)",
        "FF01",
        lambda: Batch(
            msg_id="NEG",
            extra_pmts=[
                SamplePmtInf(
                    pmt_inf_id="P1",
                    debtor_iban=A_MAIN,
                    execution_date=TODAY.isoformat(),
                    transactions=[ext("N-1", "-5.00")],
                )
            ],
            group_sum="-5.00",
        ).build(),
        "InstdAmt",
    ),
    FileCase(
        "DU01 MsgId reused with different content",
        "DU01",
        lambda: Batch(msg_id="SAME-ID", extra_pmts=[_good_pmt()], group_sum="30.00").build(),
        "SAME-ID",
        before=lambda: _first_with("SAME-ID"),
    ),
    *(
        FileCase(
            f"DU01 before {name}",
            "DU01",
            lambda kw=kw, group=group: Batch(
                msg_id="SAME-ID", extra_pmts=[_good_pmt(**kw)], **group
            ).build(),
            "SAME-ID",
            before=lambda: _first_with("SAME-ID"),
        )
        for name, kw, group in (
            ("AM18 group NbOfTxs", {}, {"group_nb": "5"}),
            ("AM18 PmtInf NbOfTxs", {"nb": "1"}, {}),
            ("AM10 group CtrlSum", {}, {"group_sum": "30.01"}),
            ("AM10 PmtInf CtrlSum", {"ctrl": "29.99"}, {}),
        )
    ),
    FileCase(
        "DU01 before AM18, streamed",  # read by the child: its counts come at the end
        "DU01",
        lambda: _many(Batch(msg_id="SAME-ID", group_nb="5"), 4_000),
        "SAME-ID",
        before=lambda: _first_with("SAME-ID"),
    ),
    FileCase(
        "AM18 group NbOfTxs",
        "AM18",
        lambda: Batch(msg_id="N1", extra_pmts=[_good_pmt()], group_nb="3").build(),
        "NbOfTxs",
    ),
    FileCase(
        "AM18 PmtInf NbOfTxs",
        "AM18",
        lambda: Batch(msg_id="N2", extra_pmts=[_good_pmt(nb="1")]).build(),
        "P1",
    ),
    FileCase(
        "AM10 group CtrlSum",
        "AM10",
        lambda: Batch(msg_id="S1", extra_pmts=[_good_pmt()], group_sum="30.01").build(),
        "30.01",
    ),
    FileCase(
        "AM10 PmtInf CtrlSum",
        "AM10",
        lambda: Batch(msg_id="S2", extra_pmts=[_good_pmt(ctrl="29.99")]).build(),
        "29.99",
    ),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.name for c in FILE_CASES])
def test_file_reason_code(
    case: FileCase, inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """The whole file is rejected: group RJCT with the code and AddtlInf, no payment
    information listed, the original in rejected/ with its findings, no ledger change."""
    if case.before is not None:
        assert inst.submit(case.before(), name="first.xml").group_status == "ACSC"
    before = inst.balances()
    answer = inst.submit(case.data(), name="bad.xml")
    assert_valid(answer.path, PAIN002)
    assert answer.group_status == "RJCT"
    assert answer.group_reasons == [case.code]
    assert answer.group_info and case.info_has in " ".join(answer.group_info)
    assert answer.transactions() == [] and answer.pmt_statuses() == {}
    assert answer.shelf is not None and answer.shelf.parts[-4] == "rejected"
    findings = answer.shelf.with_name(answer.shelf.name + ".findings.txt").read_text()
    assert case.code in findings
    assert inst.balances() == before
    inst.env.ledger.check_invariants()


def test_reused_msg_id_of_another_client_is_not_du01(inst: Installation) -> None:
    """MsgIds are unique per client: client B may use an id client A already used."""
    data = Batch(msg_id="SHARED-ID", extra_pmts=[_good_pmt()]).build()
    assert inst.submit(data, name="a.xml").group_status == "ACSC"
    b_pmt = SamplePmtInf(
        pmt_inf_id="PB",
        debtor_iban=B_MAIN,
        execution_date=TODAY.isoformat(),
        transactions=[ext("B-1", "2.00")],
    )
    other = inst.submit(
        Batch(msg_id="SHARED-ID", extra_pmts=[b_pmt]).build(), name="b.xml", client=CLIENT_B
    )
    assert other.group_status == "ACSC"


# -- group status derivation and AcctSvcrRef -------------------------------------------------


@pytest.mark.parametrize(
    ("pmts", "group", "pmt_status"),
    [
        pytest.param(
            [("P1", A_MAIN, TODAY.isoformat(), [ext("A", "1.00"), ext("B", "2.00")])],
            "ACSC",
            {"P1": "ACSC"},
            id="all booked: ACSC",
        ),
        pytest.param(
            [
                ("P1", A_MAIN, TODAY.isoformat(), [ext("A", "1.00")]),
                ("P2", A_MAIN, "2026-12-01", [ext("B", "2.00")]),
            ],
            "ACCP",
            {"P1": "ACSC", "P2": "ACCP"},
            id="booked and pending: ACCP",
        ),
        pytest.param(
            [
                ("P1", A_MAIN, TODAY.isoformat(), [ext("A", "1.00")]),
                ("P2", A_CLOSED, TODAY.isoformat(), [ext("B", "2.00")]),
            ],
            "PART",
            {"P1": "ACSC", "P2": "RJCT"},
            id="some rejected: PART",
        ),
        pytest.param(
            [("P1", A_MAIN, "2026-12-01", [ext("A", "1.00"), ext("B", "0.00")])],
            "PART",
            {"P1": "PART"},
            id="pending and rejected: PART",
        ),
        pytest.param(
            [
                ("P1", A_CLOSED, TODAY.isoformat(), [ext("A", "1.00")]),
                ("P2", A_MAIN, TODAY.isoformat(), [ext("B", "0.00")]),
            ],
            "RJCT",
            {"P1": "RJCT", "P2": "RJCT"},
            id="all rejected: RJCT",
        ),
    ],
)
def test_group_status_derivation(
    pmts: list[tuple[str, str, str, list[SampleTx]]],
    group: str,
    pmt_status: dict[str, str],
    inst: Installation,
    assert_valid: Callable[[object, str], None],
) -> None:
    """Group and payment-information statuses derive from the transactions (all RJCT →
    RJCT, some RJCT → PART, all ACSC → ACSC, else ACCP), and AcctSvcrRef is given for
    exactly the booked transactions, each a distinct reference."""
    payment_infos = [
        SamplePmtInf(pmt_inf_id=i, debtor_iban=d, execution_date=day, transactions=t)
        for i, d, day, t in pmts
    ]
    answer = inst.submit(Batch(msg_id="DERIVE", extra_pmts=payment_infos).build())
    assert_valid(answer.path, PAIN002)
    assert answer.group_status == group
    assert answer.pmt_statuses() == pmt_status
    amounts = {t.end_to_end_id: t.amount for _, _, _, txs in pmts for t in txs}
    refs, booked = [], 0
    for tx in answer.transactions():
        assert (tx.acct_svcr_ref is not None) == (tx.status == "ACSC"), tx
        assert bool(tx.reasons) == (tx.status == "RJCT"), tx
        if tx.acct_svcr_ref:
            refs.append(tx.acct_svcr_ref)
            booked += int(Decimal(amounts[tx.end_to_end_id]) * 100)
    assert len(refs) == len(set(refs))
    assert inst.balance(A_MAIN) == 10_000_000 - booked


def test_the_treasurys_own_accounts_are_not_payable(inst: Installation) -> None:
    """A client cannot pay into the treasury's clearing account: AC01, as for an IBAN the
    treasury does not have, and no money moves."""
    before = inst.balance(A_MAIN)
    answer = inst.submit(Batch().tx("SYS-1", "1.00", creditor=inst.clearing("EUR")).build())
    assert answer.tx("SYS-1").status == "RJCT" and answer.tx("SYS-1").reasons == ["AC01"]
    assert inst.balance(A_MAIN) == before


def test_a_rejected_payment_is_echoed_with_its_amount(inst: Installation) -> None:
    """A payment rejected by a rule (here AC01, a bad IBAN check digit) is still echoed
    with its amount and date in OrgnlTxRef, and its payment information's OrgnlCtrlSum
    is its CtrlSum as the client sent it."""
    answer = inst.submit(
        Batch(msg_id="ECHO-1")
        .tx("OK-1", "10.00")
        .tx("BAD-1", "2.50", creditor=BAD_CHECKSUM)
        .build(),
        name="echo.xml",
    )
    assert answer.tx("BAD-1").reasons == ["AC01"]
    ns = {"p": NS002}
    amounts = answer.doc.xpath(
        "//p:TxInfAndSts[p:OrgnlEndToEndId='BAD-1']/p:OrgnlTxRef/p:Amt/p:InstdAmt", namespaces=ns
    )
    assert [(a.text, a.get("Ccy")) for a in amounts] == [("2.50", "EUR")]
    assert answer.doc.xpath("//p:OrgnlPmtInfAndSts/p:OrgnlCtrlSum/text()", namespaces=ns) == [
        "12.50"
    ]


def test_an_account_taken_out_of_the_configuration_takes_no_payments(
    inst: Installation,
) -> None:
    """An account whose client no longer has it in the configuration stays in the ledger
    (its money is there) but has no statements any more: a payment to it was booked ACSC
    and shown in no camt.053 or camt.054, ever (a tester). It is AC01, as any account
    that is not a client account of the treasury."""
    config = inst.config.read_text(encoding="utf-8")
    block = f'  [[client.account]]\n  iban = "{B_MAIN}"\n  currency = "EUR"\n'
    assert block in config
    inst.config.write_text(config.replace(block, ""), encoding="utf-8")
    later = Installation.copy_of(inst.base, inst.base.with_name("later"), now=inst.clock.now())
    try:
        answer = later.submit(Batch(msg_id="GONE").tx("G-1", "5.00", B_MAIN).build())
        assert answer.statuses() == {"G-1": "RJCT"}
        [tx] = answer.transactions()
        assert tx.reasons == ["AC01"] and "is not a treasury account" in tx.additional_info[0]
    finally:
        later.close()


def test_a_payment_without_a_creditor_account_is_ac01_saying_so(inst: Installation) -> None:
    """CdtrAcct is optional in the schema; a payment without one was answered "CdtrAcct ?
    is not an IBAN" (a tester)."""
    data = Batch(msg_id="NO-ACCT").tx("N-1", "5.00", B_MAIN).tx("N-2", "5.00", B_MAIN).build()
    data = re.sub(rb"<CdtrAcct>.*?</CdtrAcct>", b"", data, count=1)
    answer = inst.submit(data)
    assert answer.statuses() == {"N-1": "RJCT", "N-2": "ACSC"}
    missing = answer.tx("N-1")
    assert missing.reasons == ["AC01"]
    said = "CdtrAcct missing: a credit transfer needs the creditor's IBAN"
    assert missing.additional_info == [said]


def test_a_batch_named_like_a_container_is_read_as_what_it_is(inst: Installation) -> None:
    """SPEC §15: the root element's namespace decides what a file is. A pain.001 uploaded
    as `pay.asice` was refused DS0B "container refused: not a zip file" (a tester); it is
    a batch. A file of that name that is neither XML nor a zip is still an unreadable
    container (DS0B)."""
    answer = inst.submit(Batch(msg_id="AS-ASICE").tx("Z-1", "5.00", B_MAIN).build(), "pay.asice")
    assert answer.original_msg_id == "AS-ASICE" and answer.statuses() == {"Z-1": "ACSC"}
    broken = inst.submit(b"\x00\x01 neither", "sig.asice")
    assert broken.group_status == "RJCT" and broken.group_reasons == ["DS0B"]


def test_an_equivalent_amount_counts_towards_ctrl_sum_and_is_am03_alone(
    inst: Installation,
) -> None:
    """ISO's CtrlSum is the sum of all individual amounts, whatever their currencies: a
    payment sent as `EqvtAmt` counts. A file whose CtrlSum counted it was refused AM10 as
    a whole (a tester); now only that payment is refused, AM03."""
    data = Batch(msg_id="EQVT").tx("Q-1", "10.00", B_MAIN).tx("Q-2", "1.00", B_MAIN).build()
    instructed = b'<InstdAmt Ccy="EUR">10.00</InstdAmt>'
    assert data.count(instructed) == 1
    data = data.replace(
        instructed, b'<EqvtAmt><Amt Ccy="EUR">10.00</Amt><CcyOfTrf>USD</CcyOfTrf></EqvtAmt>'
    )
    assert b"<CtrlSum>11.00</CtrlSum>" in data
    answer = inst.submit(data)
    assert answer.group_status == "PART", answer.group_info
    assert answer.statuses() == {"Q-1": "RJCT", "Q-2": "ACSC"}
    assert answer.tx("Q-1").reasons == ["AM03"]
