"""The whole pipeline on PostgreSQL: the same code and migrations as on SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.outbound import statements
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_B,
    TODAY,
    Batch,
    Installation,
)


def test_files_pending_payments_and_statements_on_postgresql(
    tmp_path: Path, pg_url: str, assert_valid: object
) -> None:
    """On PostgreSQL a mixed file is answered (ACSC, RJCT AM04, PDNG), the pending payment
    runs on its day, the same bytes are not executed twice, and the day's statements
    reconcile — exactly as on SQLite."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
        data = (
            Batch(msg_id="PG-1").tx("PG-OK", "10.00").tx("PG-INT", "5.00", creditor=B_MAIN).build()
        )
        answer = inst.submit(data, name="pg.xml")
        assert answer.statuses() == {"PG-OK": "ACSC", "PG-INT": "ACSC"}
        poor = Batch(debtor=A_SMALL, msg_id="PG-2").tx("PG-POOR", "500.00").build()
        assert inst.submit(poor, name="poor.xml").tx("PG-POOR").reasons == ["AM04"]
        later = Batch(msg_id="PG-3", execution_date=tomorrow).tx("PG-LATER", "1.00").build()
        assert inst.submit(later, name="later.xml").statuses() == {"PG-LATER": "PDNG"}
        junk = inst.submit(b"\x00 not xml", name="junk.xml")
        assert junk.group_status == "RJCT" and junk.group_reasons == ["FF01"]
        again = inst.submit(data, name="pg-again.xml")
        assert again.path.read_bytes() == answer.path.read_bytes()

        a_before, b_before = inst.balance(A_MAIN), inst.balance(B_MAIN)
        inst.clock.set(
            dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(9, 0), inst.settings.timezone)
        )
        inst.run()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"PG-LATER": "ACSC"}
        assert inst.balance(A_MAIN) == a_before - 100
        assert inst.balance(B_MAIN) == b_before

        inst.clock.set(dt.datetime.combine(TODAY, dt.time(23, 0), inst.settings.timezone))
        written = statements.write_statements(inst.env, TODAY)
        assert any(r.written and r.iban == B_MAIN for r in written)
        statement = next(inst.outbox(CLIENT_B).glob("*camt.053*.xml"))
        assert_valid(statement, "camt.053.001.02")  # type: ignore[operator]
        inst.env.ledger.check_invariants()
    finally:
        inst.close()
