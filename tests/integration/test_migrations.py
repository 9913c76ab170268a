"""Upgrading a database made by an earlier version of the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from gateway import db
from gateway.inbound import rules
from gateway.inbound.pending import due_payments
from gateway.migrations import HEAD, VERSION_TABLE, run_upgrade
from tests.pipeline_fixtures import A_MAIN, EXTERNAL, TODAY, Batch, Installation


def _as_before_0002(engine: sa.Engine) -> str:
    """Turn the fingerprints back into revision 0001's 32-character text, as a database
    made before 0002 holds them; returns the payment's EndToEndId."""
    with engine.begin() as conn:
        e2e = conn.execute(sa.select(db.payments.c.end_to_end_id)).scalar_one()
        operations = Operations(MigrationContext.configure(conn))
        operations.drop_index("ix_gw_payments_fingerprint", table_name="gw_payments")
        with operations.batch_alter_table("gw_payments") as batch:
            batch.alter_column(
                "fingerprint",
                existing_type=sa.BigInteger(),
                type_=sa.String(32),
                postgresql_using="NULL::varchar",
            )
        conn.execute(sa.text("UPDATE gw_payments SET fingerprint = :old"), {"old": "ab" * 16})
        operations.create_index("ix_gw_payments_fingerprint", "gw_payments", ["fingerprint"])
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0001'"))
    return str(e2e)


def test_text_fingerprints_are_recomputed_and_still_catch_duplicates(
    tmp_path: Path, database_url: str
) -> None:
    """A payment booked by a gateway that stored text fingerprints is, after the upgrade,
    still recognised when the same payment comes again in another file (AM05)."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        first = inst.submit(Batch(msg_id="OLD-1").tx("RENT-12", "50.00").build(), name="a.xml")
        assert first.statuses() == {"RENT-12": "ACSC"}
        e2e = _as_before_0002(inst.env.engine)
        run_upgrade(inst.env.engine)
        with inst.env.engine.connect() as conn:
            (version,) = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).one()
            stored = conn.execute(sa.select(db.payments.c.fingerprint)).scalar_one()
        assert version == HEAD
        assert stored == rules.fingerprint(A_MAIN, EXTERNAL, 5000, "EUR", e2e)
        again = inst.submit(Batch(msg_id="NEW-1").tx("RENT-12", "50.00").build(), name="b.xml")
        assert again.tx("RENT-12").reasons == ["AM05"]
    finally:
        inst.close()


def test_the_due_date_index_becomes_a_partial_one(tmp_path: Path, database_url: str) -> None:
    """A database with 0002's full (status, due_date) index gets the partial index of
    pending payments instead, and a payment left pending is still executed when due."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        with inst.env.engine.begin() as conn:
            operations = Operations(MigrationContext.configure(conn))
            operations.drop_index("ix_gw_payments_pending", table_name="gw_payments")
            operations.create_index("ix_gw_payments_due", "gw_payments", ["status", "due_date"])
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0002'"))
        run_upgrade(inst.env.engine)
        indexes = {i["name"] for i in sa.inspect(inst.env.engine).get_indexes("gw_payments")}
        assert "ix_gw_payments_pending" in indexes and "ix_gw_payments_due" not in indexes
        with inst.env.engine.connect() as conn:
            (version,) = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).one()
        assert version == HEAD
        # Booked now, one pending to a later day: the index holds only the pending one.
        tomorrow = TODAY + dt.timedelta(days=1)
        later = Batch(msg_id="LATER-1", execution_date=tomorrow.isoformat())
        late = later.tx("RENT-1", "10.00").build()
        assert inst.submit(late, name="later.xml").statuses() == {"RENT-1": "PDNG"}
        now = Batch(msg_id="NOW-1").tx("RENT-2", "10.00").build()
        assert inst.submit(now, name="now.xml").statuses() == {"RENT-2": "ACSC"}
        with inst.env.engine.connect() as conn:
            assert len(conn.execute(due_payments(tomorrow + dt.timedelta(days=7))).all()) == 1
            assert conn.execute(due_payments(tomorrow - dt.timedelta(days=1))).all() == []
    finally:
        inst.close()


def test_sqlite_finds_due_payments_through_the_partial_index(tmp_path: Path) -> None:
    """SQLite uses a partial index only when the query states its condition literally."""
    inst = Installation.create(tmp_path / "gw", database_url=f"sqlite:///{tmp_path / 'l.db'}")
    try:
        query = due_payments(dt.date(2026, 12, 1)).compile(
            inst.env.engine, compile_kwargs={"literal_binds": True}
        )
        with inst.env.engine.connect() as conn:
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")
            )
        assert "ix_gw_payments_pending" in plan, plan
    finally:
        inst.close()


def test_the_transfer_reference_index_is_dropped_and_statements_still_find_payments(
    tmp_path: Path, database_url: str
) -> None:
    """A database with 0003's index on `transfer_ref` loses it; the payments a batch
    transfer carries are still found for statements (through the file the reference
    names), before and after the upgrade alike."""
    from gateway import statements

    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        batch = Batch(msg_id="REF-1").tx("SAL-1", "10.00").tx("SAL-2", "20.00").build()
        assert inst.submit(batch, name="ref.xml").statuses() == {"SAL-1": "ACSC", "SAL-2": "ACSC"}
        with inst.env.engine.begin() as conn:
            operations = Operations(MigrationContext.configure(conn))
            operations.create_index("ix_gw_payments_transfer_ref", "gw_payments", ["transfer_ref"])
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0003'"))
        run_upgrade(inst.env.engine)
        indexes = {i["name"] for i in sa.inspect(inst.env.engine).get_indexes("gw_payments")}
        assert "ix_gw_payments_transfer_ref" not in indexes
        with inst.env.engine.connect() as conn:
            (version,) = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).one()
            account_id = conn.execute(
                sa.text("SELECT id FROM ledger_accounts WHERE iban = :iban"), {"iban": A_MAIN}
            ).scalar_one()
            entries = statements.entries(conn, account_id, day=TODAY)
        assert version == HEAD
        [entry] = [e for e in entries if any(d.end_to_end_id == "SAL-1" for d in e.details)]
        assert sorted(d.end_to_end_id for d in entry.details) == ["SAL-1", "SAL-2"]
    finally:
        inst.close()
