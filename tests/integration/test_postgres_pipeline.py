"""The whole pipeline on PostgreSQL: the same code and migrations as on SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.errors import TransientError
from gateway.outbound import statements
from ledger import bulk
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
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


@pytest.mark.parametrize("payments", [3, bulk.values_rows_max + 1], ids=["unnest", "COPY"])
def test_a_refused_bulk_insert_is_a_fault_of_ours_not_the_files(
    tmp_path: Path, pg_url: str, payments: int
) -> None:
    """A permission the database refuses while a file's payments are inserted in bulk
    (a DBA's REVOKE: SQLSTATE 42501) is a fault of ours like any database error: the pass
    stops, the file waits in work/ unbooked and unanswered, and it is processed once
    when the fault clears. The driver's own error from the bulk paths (`unnest`, `COPY`)
    was not taken for one: each file was tried three times at once and quarantined
    (tester D, stop 45)."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        with inst.env.engine.begin() as conn:
            conn.exec_driver_sql(_REFUSE_PAYMENTS)
        batch_ = Batch(msg_id="DENIED")
        for n in range(payments):
            batch_.tx(f"D-{n}", "1.00")
        inst.drop(batch_.build(), "denied.xml")
        before = inst.balance(A_MAIN)
        for _ in range(4):  # more often than a defect is tried: never quarantined
            with pytest.raises(TransientError):
                inst.run()
        assert inst.new_answers() == [] and inst.balance(A_MAIN) == before
        assert len(list(inst.env.spool.work(CLIENT_A).glob("*__denied.xml"))) == 1
        assert not (inst.spool / "quarantine").exists() or not any(
            (inst.spool / "quarantine").rglob("*denied*")
        )
        with inst.env.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_payments ON gw_payments")
        inst.run()
        [answer] = inst.new_answers()
        assert answer.group_status == "ACSC"
        assert inst.balance(A_MAIN) == before - 100 * payments
    finally:
        inst.close()


# What PostgreSQL says to a role whose INSERT on the table was revoked (42501).
_REFUSE_PAYMENTS = """
CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'permission denied for table gw_payments' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER refuse_payments BEFORE INSERT ON gw_payments
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_insert();
"""
