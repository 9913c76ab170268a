"""The pull side on PostgreSQL: the same code as on SQLite (SPEC §15)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cancellations import cancel, payment_status, waiting_batch
from tests.integration.test_report_requests import closed_yesterday, request, statement_day
from tests.pipeline_fixtures import CLIENT_A, Installation


def test_copies_and_cancellations_on_postgresql(tmp_path: Path, pg_url: str, assert_valid) -> None:  # type: ignore[no-untyped-def]
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        out = closed_yesterday(inst)
        inst.drop(request(statement_day()), "req.xml", CLIENT_A)
        inst.run()
        (copy,) = out.new()
        assert copy.texts("Stmt/CpyDplctInd") == ["DUPL"]
        assert_valid(copy.path, "camt.053.001.02")
        waiting_batch(inst)
        inst.new_answers()
        out.new()
        inst.drop(cancel(("E-1", "10.00"), ("E-2", None)), "cxl.xml", CLIENT_A)
        inst.run()
        found = {f.message: f for f in out.new()}
        assert found["camt.029.001.10"].text("Sts/Conf") == "CNCL"
        assert_valid(found["camt.029.001.10"].path, "camt.029.001.10")
        assert found["pain.002.001.03"].texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02"] * 2
        assert payment_status(inst, "E-1") == ("RJCT", "DS02")
        assert payment_status(inst, "E-3") == ("PDNG", None)
    finally:
        inst.close()
