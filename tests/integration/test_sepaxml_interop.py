"""Batches written by an independent generator (the `sepaxml` library, as many ERPs use)
are executed and answered: every payment booked (ACSC) with its AcctSvcrRef, money moved
from the debtor to the internal creditor and to the clearing account for external ones,
the answer valid and sealed, the accepted original sealed in the archive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree
from sepaxml import SepaTransfer

from tests.pipeline_fixtures import (
    A_MAIN,
    B_MAIN,
    EXTERNAL,
    EXTERNAL_BIC,
    PAIN002,
    TODAY,
    Installation,
    iban_lv,
)

NS001 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("template")
    Installation.create(base).close()
    return base


@pytest.fixture
def inst(template: Path, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    yield installation
    installation.close()


def sepaxml_file(batch: bool, payments: list[dict[str, object]]) -> bytes:
    transfer = SepaTransfer(
        {
            "name": "Budzeta iestade A",
            "IBAN": A_MAIN,
            "BIC": "TRELLV22",
            "batch": batch,
            "currency": "EUR",
        },
        schema="pain.001.001.03",
    )
    for payment in payments:
        transfer.add_payment(dict(payment))
    data: bytes = transfer.export(validate=True)
    return data


PAYMENTS: list[dict[str, object]] = [
    {
        "name": "SIA Piegadatajs",
        "IBAN": EXTERNAL,
        "BIC": EXTERNAL_BIC,
        "amount": 12345,  # cents
        "execution_date": TODAY,
        "description": "Rekins 17/2026",
        "endtoend_id": "SX-1",
    },
    {
        "name": "Budzeta iestade B",
        "IBAN": B_MAIN,
        "amount": 50000,
        "execution_date": TODAY,
        "description": "Parskaitijums",
        "endtoend_id": "SX-2",
    },
    {
        "name": "Cits piegadatajs",
        "IBAN": iban_lv("UNLA", 7_654_321),
        "BIC": "UNLALV2X",
        "amount": 1,
        "execution_date": TODAY,
        "description": "Viens cents",
        "endtoend_id": "SX-3",
    },
]


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one PmtInf per payment"])
def test_sepaxml_batch_is_executed_and_answered(
    batch: bool,
    inst: Installation,
    assert_valid: Callable[[object, str], None],
) -> None:
    """A sepaxml upload is booked in full: ACSC for the group, each payment information and
    each payment, distinct AcctSvcrRefs, balances moved by exactly the amounts."""
    data = sepaxml_file(batch, PAYMENTS)
    sent = etree.fromstring(data)
    msg_id = sent.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS001)
    pmt_ids = [e.text for e in sent.iterfind(".//p:PmtInf/p:PmtInfId", namespaces=NS001)]
    assert len(pmt_ids) == (1 if batch else 3)

    before = inst.balances()
    answer = inst.submit(data, name="sepaxml.xml")
    assert_valid(answer.path, PAIN002)
    assert answer.path.with_name(answer.path.name + ".sig").exists()

    assert answer.original_msg_id == msg_id
    assert answer.group_status == "ACSC"
    assert answer.pmt_statuses() == {p: "ACSC" for p in pmt_ids}
    assert answer.statuses() == {"SX-1": "ACSC", "SX-2": "ACSC", "SX-3": "ACSC"}
    refs = [t.acct_svcr_ref for t in answer.transactions()]
    assert all(refs) and len(set(refs)) == 3

    after = inst.balances()
    assert after[A_MAIN] == before[A_MAIN] - (12345 + 50000 + 1)
    assert after[B_MAIN] == before[B_MAIN] + 50000
    clearing = inst.clearing("EUR")
    assert after[clearing] == before[clearing] + 12345 + 1
    inst.env.ledger.check_invariants()

    assert answer.shelf is not None and answer.shelf.parts[-4] == "archive"
    assert answer.shelf.read_bytes() == data
    assert answer.shelf.with_name(answer.shelf.name + ".sig").exists()


def test_sepaxml_batch_with_two_execution_dates(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """sepaxml groups a batch by execution date: today's payment information is booked
    (ACSC), next week's waits (PDNG, no AcctSvcrRef, no money moved yet): group ACCP."""
    later = TODAY + dt.timedelta(days=7)
    payments = [
        dict(PAYMENTS[0]),
        {**PAYMENTS[1], "execution_date": later},
    ]
    before = inst.balances()
    answer = inst.submit(sepaxml_file(True, payments), name="two-dates.xml")
    assert_valid(answer.path, PAIN002)
    assert answer.group_status == "ACCP"
    assert sorted(answer.pmt_statuses().values()) == ["ACCP", "ACSC"]
    assert answer.tx("SX-1").status == "ACSC" and answer.tx("SX-1").acct_svcr_ref
    assert answer.tx("SX-2").status == "PDNG" and answer.tx("SX-2").acct_svcr_ref is None
    after = inst.balances()
    assert after[A_MAIN] == before[A_MAIN] - 12345
    assert after[B_MAIN] == before[B_MAIN]
