"""Budget classification codes through the real pipeline (SPEC §12), on SQLite and
PostgreSQL: what a budget institution's ERP file gets back in its pain.002, what is
booked, what is kept per payment, and what its statements carry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from ofxstatement.plugins.iso20022 import Iso20022Parser
from pycamt.parser import Camt053Parser
from sqlalchemy import select

from gateway import db
from gateway.inbound import budget
from gateway.outbound import statements
from tests.budget_fixtures import budget_installation
from tests.integration.test_statements import CAMT053, Validate, camt_files, read_camt, riga
from tests.pipeline_fixtures import (
    A_LIMITS,
    A_MAIN,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    TODAY,
    Batch,
    Installation,
)

C = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
TOMORROW = dt.date(2026, 11, 26)


@pytest.fixture
def budget_inst(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    inst = budget_installation(tmp_path / "gw", database_url)
    yield inst
    inst.close()


def kept(inst: Installation, e2e: str) -> tuple[str, str | None]:
    with inst.env.engine.connect() as conn:
        row = conn.execute(
            select(db.payments.c.status, db.payments.c.budget_codes).where(
                db.payments.c.end_to_end_id == e2e
            )
        ).one()
    return row.status, row.budget_codes


def test_bad_codes_are_rr05_naming_the_problem_and_nothing_is_booked(
    budget_inst: Installation,
) -> None:
    """Each coding mistake of SPEC §12 on a budget account's payment is RJCT RR05 with an
    AddtlInf that names it; the good payment of the same file is booked, the others not."""
    inst = budget_inst
    before = inst.balance(A_MAIN)
    batch = (
        Batch(debtor=A_MAIN)
        .tx("MISSING", "10.00")
        .tx("UNKNOWN", "10.00", codes=(("EKK", "9999", "10.00"),))
        .tx("REVENUE", "10.00", codes=(("EKK", "21.3.9.9", "10.00"),))
        .tx("EXPIRED", "10.00", codes=(("EKK", "2239", "10.00"),))
        .tx("CENT-MORE", "10.00", codes=(("EKK", "2221", "6.00"), ("EKK", "2231", "4.01")))
        .tx("CENT-LESS", "10.00", codes=(("EKK", "2221", "6.00"), ("EKK", "2231", "3.99")))
        .tx("TO-BUDGET", "10.00", B_MAIN, codes=(("EKK", "2231", "10.00"),))
        .tx("GOOD", "150.00", codes=(("EKK", "2221", "120.00"), ("EKK", "2222", "30.00")))
    )
    answer = inst.submit(batch.build())
    expected = {
        "MISSING": "EKK code lines missing",
        "UNKNOWN": "EKK 9999 is not in the classifier",
        "REVENUE": "EKK 21.3.9.9 is a revenue code, not expense or financing",
        "EXPIRED": "EKK 2239 is not valid on 2026-11-25",
        "CENT-MORE": "EKK lines add up to 10.01, 0.01 more than InstdAmt 10.00",
        "CENT-LESS": "EKK lines add up to 9.99, 0.01 less than InstdAmt 10.00",
        "TO-BUDGET": "IKK code lines missing",
    }
    for e2e, info in expected.items():
        tx = answer.tx(e2e)
        assert (tx.status, tx.reasons) == ("RJCT", ["RR05"]), e2e
        assert tx.additional_info[0].startswith(info), (e2e, tx.additional_info)
        assert kept(inst, e2e) == ("RJCT", None)
    assert answer.tx("GOOD").status == "ACSC"
    assert inst.balance(A_MAIN) == before - 150_00
    assert budget.read(kept(inst, "GOOD")[1]) == [
        ("EKK", "2221", "120.00", "EUR"),
        ("EKK", "2222", "30.00", "EUR"),
    ]


def test_schema_refusals_stay_ff01_for_the_whole_file(budget_inst: Installation) -> None:
    """11 RgltryRptg blocks (the schema allows 10) and a non-numeric Dtls/Amt: FF01 for
    the file, nothing booked."""
    inst = budget_inst
    before = inst.balance(A_MAIN)
    eleven = tuple(("EKK", "2221", "1.00") for _ in range(11))
    answer = inst.submit(
        Batch(debtor=A_MAIN).tx("E1", "11.00", codes=eleven, code_blocks=11).build(), "a.xml"
    )
    assert (answer.group_status, answer.group_reasons) == ("RJCT", ["FF01"])
    assert "RgltryRptg" in answer.group_info[0]
    bad = Batch(debtor=A_MAIN).tx("E2", "10.00", codes=(("EKK", "2221", "ten"),)).build()
    answer = inst.submit(bad, "b.xml")
    assert (answer.group_status, answer.group_reasons) == ("RJCT", ["FF01"])
    assert inst.balance(A_MAIN) == before
    ten = tuple(("EKK", "2221", "1.00") for _ in range(10))
    answer = inst.submit(
        Batch(debtor=A_MAIN).tx("E3", "10.00", codes=ten, code_blocks=10).build(), "c.xml"
    )
    assert answer.tx("E3").status == "ACSC"


def test_codes_on_a_non_budget_account_are_accepted_and_carried(
    budget_inst: Installation,
) -> None:
    inst = budget_inst
    answer = inst.submit(
        Batch(debtor=A_LIMITS)
        .tx("PLAIN", "10.00")
        .tx("CODED", "20.00", codes=(("EKK", "2231", "20.00"),))
        .build()
    )
    assert answer.statuses() == {"PLAIN": "ACSC", "CODED": "ACSC"}
    status, codes = kept(inst, "CODED")
    assert (status, budget.read(codes)) == ("ACSC", [("EKK", "2231", "20.00", "EUR")])
    assert kept(inst, "PLAIN") == ("ACSC", None)


def _addtl(path: Path) -> dict[str, list[str | None]]:
    from lxml import etree

    root = etree.parse(str(path)).getroot()
    found: dict[str, list[str | None]] = {}
    for tx in root.iter(f"{{{C}}}TxDtls"):
        e2e = tx.findtext(f"{{{C}}}Refs/{{{C}}}EndToEndId")
        if e2e is not None:  # the funding entry has none
            found.setdefault(e2e, []).append(tx.findtext(f"{{{C}}}AddtlTxInf"))
    return found


def test_statements_carry_each_sides_codes_in_addtl_tx_inf(
    budget_inst: Installation, assert_valid: Validate
) -> None:
    """Payer side on the debit (EKK …), payee side on the credit (IKK …), exactly as
    SPEC §12 writes them; the statements are valid camt.053."""
    inst = budget_inst
    codes = (
        ("EKK", "2221", "120.00"),
        ("EKK", "2222", "30.00"),
        ("IKK", "21.3.9.9", "100.00"),
        ("IKK", "F40020010", "50.00"),
    )
    answer = inst.submit(
        Batch(debtor=A_MAIN)
        .tx("INTERNAL", "150.00", B_MAIN, codes=codes)
        .tx("EXTERNAL", "70.00", EXTERNAL, codes=(("EKK", "7000", "70.00"),))
        .build()
    )
    assert answer.statuses() == {"INTERNAL": "ACSC", "EXTERNAL": "ACSC"}
    inst.clock.set(inst.clock.now().replace(hour=17, minute=0))
    statements.write_statements(inst.env, TODAY)
    (a_path,) = [p for p in camt_files(inst, CAMT053, CLIENT_A) if read_camt(p).iban == A_MAIN]
    (b_path,) = [p for p in camt_files(inst, CAMT053, CLIENT_B) if read_camt(p).iban == B_MAIN]
    assert _addtl(a_path) == {
        "INTERNAL": ["EKK 2221 120.00; EKK 2222 30.00"],
        "EXTERNAL": ["EKK 7000 70.00"],
    }
    assert _addtl(b_path)["INTERNAL"] == ["IKK 21.3.9.9 100.00; IKK F40020010 50.00"]
    for path in (a_path, b_path):
        assert_valid(path, CAMT053)
        still_reconciles(path)


def still_reconciles(path: Path) -> None:
    """Off-the-shelf readers take a statement with codes as they take one without: pycamt's
    rows and ofxstatement-iso20022's lines add up from the opening to the closing balance."""
    parser = Camt053Parser.from_file(path)
    (info,) = parser.get_statement_info()
    moved = sum(
        Decimal(r["Amount"]) * (1 if r["CreditDebitIndicator"] == "CRDT" else -1)
        for r in parser.get_transactions()
    )
    assert moved == Decimal(info["ClosingBalance"]) - Decimal(info["OpeningBalance"])
    statement = Iso20022Parser(str(path)).parse()
    assert sum(line.amount for line in statement.lines) == moved
    assert statement.end_balance == Decimal(info["ClosingBalance"])


def test_a_pending_payment_keeps_its_codes_into_its_execution_and_notification(
    tmp_path: Path, database_url: str, assert_valid: Validate
) -> None:
    """A payment dated tomorrow waits with its codes; executed on the day, its camt.054
    and both statements carry them."""
    inst = budget_installation(tmp_path / "gw", database_url, notifications=True)
    try:
        codes = (("EKK", "2221", "80.00"), ("EKK", "5238", "20.00"), ("IKK", "21.3.8.0", "100.00"))
        batch = Batch(debtor=A_MAIN, execution_date="2026-11-26").tx("RENT", "100.00", B_MAIN,
                                                                    codes=codes)  # fmt: skip
        assert inst.submit(batch.build()).statuses() == {"RENT": "PDNG"}
        assert kept(inst, "RENT")[0] == "PDNG" and kept(inst, "RENT")[1]
        before = set(inst.outbox(CLIENT_A).glob("*_camt.054.001.02_*.xml"))
        inst.clock.set(riga(TOMORROW, "08:00"))
        assert len(inst.run().files_with_pending_executed) == 1
        assert kept(inst, "RENT")[0] == "ACSC"
        (note,) = set(inst.outbox(CLIENT_A).glob("*_camt.054.001.02_*.xml")) - before
        assert_valid(note, "camt.054.001.02")
        assert "<AddtlTxInf>EKK 2221 80.00; EKK 5238 20.00</AddtlTxInf>" in note.read_text("utf-8")
        inst.clock.set(riga(TOMORROW, "18:45"))
        statements.write_statements(inst.env, TODAY)  # its funding, stated first
        statements.write_statements(inst.env, TOMORROW)
        for client, iban, shown in (
            (CLIENT_A, A_MAIN, "EKK 2221 80.00; EKK 5238 20.00"),
            (CLIENT_B, B_MAIN, "IKK 21.3.8.0 100.00"),
        ):
            (path,) = [
                p for p in camt_files(inst, CAMT053, client)
                if (r := read_camt(p)).iban == iban and r.day == TOMORROW
            ]  # fmt: skip
            assert _addtl(path) == {"RENT": [shown]}
            assert_valid(path, CAMT053)
    finally:
        inst.close()
