"""Which payment a cancellation names when its ids are not unique (SPEC §15, §6).

`NOTPROVIDED` may repeat within a payment information (SPEC §6), and a PmtInfId may
repeat across a client's files. A cancellation names the payment its identifiers fit —
the original amount telling apart payments with the same ids, the files telling apart
payment informations with the same id — and one whose identifiers still fit several
is refused saying what to name, never answered ACCR for one of them picked at random
(the tester's find: both mentions of NOTPROVIDED answered ACCR and CNCL, echoing the
5.00 EUR payment, while the 6.00 EUR one stayed pending and would have executed).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway import db
from tests.integration.pull_fixtures import Out
from tests.integration.test_cancellations import LATER, by_type, run_request, tx_statuses
from tests.pipeline_fixtures import B_MAIN, Batch, Installation
from tests.unit import pull_samples as s

NOTPROVIDED = "NOTPROVIDED"


def statuses(inst: Installation, msg_id: str) -> list[tuple[str, int, str, str | None]]:
    """(EndToEndId, amount in cents, status, reason) of each payment of `msg_id`."""
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        rows = conn.execute(
            select(p.end_to_end_id, p.amount_minor, p.status, p.reason)
            .where(p.msg_id == msg_id)
            .order_by(p.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def notprovided_batch(inst: Installation) -> None:
    """T5-G1, payment information T5-G1-P1: two pending payments NOTPROVIDED, 5.00 and 6.00."""
    b = Batch(msg_id="T5-G1", execution_date=LATER.isoformat())
    b.tx(NOTPROVIDED, "5.00", B_MAIN).tx(NOTPROVIDED, "6.00", B_MAIN)
    answer = inst.submit(b.build(), name="g1.xml")
    assert [t.status for t in answer.transactions()] == ["PDNG", "PDNG"]


def request(version: str, *txs: tuple[str, str | None], msg_id: str = "CXL-W1") -> bytes:
    named = tuple(
        s.CancelTx(end_to_end_id=e2e, instr_id=None, amount=amount, cancellation_id=f"C-{n}")
        for n, (e2e, amount) in enumerate(txs, start=1)
    )
    pmt = s.CancelPmtInf(pmt_inf_id="T5-G1-P1", transactions=named)
    return s.to_bytes(
        s.camt055(version, msg_id=msg_id, original_msg_id="T5-G1", payment_infos=(pmt,))
    )


def test_the_original_amount_tells_notprovided_payments_apart(inst: Installation) -> None:
    notprovided_batch(inst)
    out = Out(inst.outbox())
    outcome = run_request(inst, request("09", (NOTPROVIDED, "6.00")))
    assert outcome.group_status == "CNCL"
    found = by_type(out.new())
    (answer,) = found["camt.029.001.10"]
    assert tx_statuses(answer) == [(NOTPROVIDED, "ACCR", [])]
    assert answer.texts("TxInfAndSts/OrgnlInstdAmt") == ["6.00"]
    assert statuses(inst, "T5-G1") == [
        (NOTPROVIDED, 500, "PDNG", None),
        (NOTPROVIDED, 600, "RJCT", "DS02"),
    ]
    (follow_up,) = found["pain.002.001.03"]
    assert follow_up.texts("TxInfAndSts/TxSts") == ["RJCT"]
    # the other one by its amount in a second request; an amount neither has is refused
    outcome = run_request(
        inst, request("09", (NOTPROVIDED, "5.00"), (NOTPROVIDED, "7.00"), msg_id="CXL-W2"),
        name="cxl2.xml",
    )  # fmt: skip
    assert outcome.group_status == "PACR"
    (answer,) = by_type(out.new())["camt.029.001.10"]
    assert tx_statuses(answer) == [(NOTPROVIDED, "ACCR", []), (NOTPROVIDED, "RJCR", ["NOOR"])]
    assert "7.00 EUR is not that of any of the 2 it names (5.00 EUR, 6.00 EUR)" in " ".join(
        answer.texts("CxlStsRsnInf/AddtlInf")
    )
    assert [st for *_, st, _ in statuses(inst, "T5-G1")] == ["RJCT", "RJCT"]


@pytest.mark.parametrize("version", ["09", "01"])
def test_notprovided_named_without_what_tells_them_apart_is_refused(
    inst: Installation, version: str
) -> None:
    """Named twice without amounts: neither mention says which payment it is, so both are
    refused saying what to name, and both payments still wait — never ACCR for one while
    the other executes."""
    notprovided_batch(inst)
    out = Out(inst.outbox())
    outcome = run_request(inst, request(version, (NOTPROVIDED, None), (NOTPROVIDED, None)))
    assert outcome.group_status == "RJCR"
    (answer,) = out.new()  # no follow-up: nothing cancelled
    code = "NOOR" if version == "09" else "AGNT"  # camt.029.001.03 knows no NOOR
    assert answer.text("Sts/Conf") == "RJCR"
    assert tx_statuses(answer) == [(NOTPROVIDED, "RJCR", [code])] * 2
    said = " ".join(answer.texts("CxlStsRsnInf/AddtlInf"))
    assert "2 payments of T5-G1-P1 have EndToEndId NOTPROVIDED" in said
    assert "OrgnlInstdAmt" in said
    assert [st for *_, st, _ in statuses(inst, "T5-G1")] == ["PDNG", "PDNG"]


def pending_file(inst: Installation, msg_id: str, *e2es: str) -> None:
    """A pending file `msg_id` whose one payment information is K-P1 (amounts 1.00,
    2.00, … in T5-K1; 11.00, 12.00, … in T5-K2: not the same payments, AM05)."""
    b = Batch(msg_id=msg_id, execution_date=LATER.isoformat())
    for n, e2e in enumerate(e2es, start=1 if msg_id.endswith("1") else 11):
        b.tx(e2e, f"{n}.00", B_MAIN)
    data = b.build().replace(f"{msg_id}-P1".encode(), b"K-P1")
    answer = inst.submit(data, name=f"{msg_id}.xml")
    assert set(answer.statuses().values()) == {"PDNG"}


def by_pmt_inf(msg_id: str, *e2es: str) -> bytes:
    """Naming K-P1 and transactions in it, without the original group."""
    txs = tuple(s.CancelTx(end_to_end_id=e, instr_id=None, amount=None) for e in e2es)
    pmt = s.CancelPmtInf(pmt_inf_id="K-P1", transactions=txs)
    return s.to_bytes(s.camt055("09", msg_id=msg_id, group_level=False, payment_infos=(pmt,)))


def test_a_payment_information_id_in_two_files_names_the_payment_its_ids_fit(
    inst: Installation,
) -> None:
    """K-P1 is in T5-K1 and T5-K2: K-1 (only in T5-K1) is cancelled; K-X, in both, is
    refused asking for the original MsgId; the whole K-P1 as before."""
    pending_file(inst, "T5-K1", "K-1", "K-X")
    pending_file(inst, "T5-K2", "K-2", "K-X")
    out = Out(inst.outbox())
    outcome = run_request(inst, by_pmt_inf("CXL-K1", "K-1", "K-X"))
    assert outcome.group_status == "PACR"
    found = by_type(out.new())
    (answer,) = found["camt.029.001.10"]
    assert tx_statuses(answer) == [("K-1", "ACCR", []), ("K-X", "RJCR", ["NOOR"])]
    assert answer.texts("CxlStsRsnInf/AddtlInf") == [
        "K-P1 is in 2 of your files: name the original MsgId"
    ]
    (follow_up,) = found["pain.002.001.03"]
    assert follow_up.text("OrgnlGrpInfAndSts/OrgnlMsgId") == "T5-K1"
    assert statuses(inst, "T5-K1") == [("K-1", 100, "RJCT", "DS02"), ("K-X", 200, "PDNG", None)]
    assert statuses(inst, "T5-K2") == [("K-2", 1100, "PDNG", None), ("K-X", 1200, "PDNG", None)]
    outcome = run_request(inst, by_pmt_inf("CXL-K2", "K-2"), name="cxl2.xml")
    assert outcome.group_status == "CNCL"
    assert statuses(inst, "T5-K2")[0] == ("K-2", 1100, "RJCT", "DS02")
