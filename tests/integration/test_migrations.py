"""Upgrading a database made by an earlier version of the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from gateway import db
from gateway.inbound import rules
from gateway.migrations import HEAD, VERSION_TABLE, run_upgrade
from tests.pipeline_fixtures import A_MAIN, EXTERNAL, Batch, Installation


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
