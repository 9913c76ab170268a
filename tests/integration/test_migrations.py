"""The database schema: what the migrations make is what the code declares, and a database
made by the previous release is upgraded with its data, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway import announcements, db
from gateway import migrations as gateway_migrations
from gateway.db_schema import upgrade_database
from gateway.pending import due_payments
from ledger import audit, schema
from ledger import migrations as ledger_migrations
from ledger.engine import make_engine
from tests.pipeline_fixtures import A_MAIN, B_MAIN, TODAY, Batch, Installation

# Declared by migrations 0003 and 0016 only (see gateway/db.py), so not in the metadata.
PARTIAL_INDEX = "ix_gw_payments_pending"
PARTIAL_INDEXES = (PARTIAL_INDEX, "ix_gw_outbox_reports")


def _differences(engine: sa.Engine, metadata: sa.MetaData, prefix: str) -> list[object]:
    def ours(obj: object, name: str | None, kind: str, reflected: bool, _: object) -> bool:
        if kind == "table":
            return bool(name and name.startswith(prefix) and "alembic" not in name)
        return name not in PARTIAL_INDEXES

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": ours, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))


def test_the_migrations_make_exactly_the_declared_tables(
    tmp_path: Path, database_url: str
) -> None:
    """A database made by `db upgrade` has every table, column, type, index and
    constraint the code declares, and nothing else (Alembic finds no difference)."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        assert _differences(inst.env.engine, schema.metadata, "ledger_") == []
        assert _differences(inst.env.engine, db.metadata, "gw_") == []
        indexes = {i["name"] for i in sa.inspect(inst.env.engine).get_indexes("gw_payments")}
        assert PARTIAL_INDEX in indexes
    finally:
        inst.close()


def _previous_release(url: str) -> sa.Engine:
    """A database as the previous release made it (ledger 0001, gateway 0004) holding a
    booked payment: a transfer with its debit and credit account columns, a payment row."""
    engine = make_engine(url)
    for package, head in ((ledger_migrations, "0001"), (gateway_migrations, "0004")):
        assert package.__file__ is not None
        config = ledger_migrations.alembic_config(
            engine, Path(package.__file__).parent, package.VERSION_TABLE
        )
        command.upgrade(config, head)
    day = TODAY.isoformat()
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        for n, iban in enumerate((A_MAIN, B_MAIN), start=1):
            run(
                "INSERT INTO ledger_accounts (id, iban, currency, owner, kind, status, "
                "overdraft_minor, balance_minor) VALUES "
                f"({n}, '{iban}', 'EUR', 'iestade-{'ab'[n - 1]}', 'client', 'open', 0, "
                f"{(-1) ** n * -500})"
            )
        run(
            "INSERT INTO ledger_transfers (id, idempotency_key, reference, kind, currency, "
            "amount_minor, debit_account_id, credit_account_id, booking_date, value_date, "
            f"booked_at) VALUES (1, 'old:1', 'EK000000000100000000', 'internal', 'EUR', 500, "
            f"1, 2, '{day}', '{day}', '{day} 10:00:00')"
        )
        run(
            "INSERT INTO ledger_postings (id, transfer_id, account_id, amount_minor, "
            f"currency, booking_date) VALUES (1, 1, 1, -500, 'EUR', '{day}'), "
            f"(2, 1, 2, 500, 'EUR', '{day}')"
        )
        run(
            "INSERT INTO gw_files (id, client_id, sha256, size_bytes, original_name, "
            "received_at, processed_at, msg_id, accepted_msg_id, message, group_status, "
            "nb_of_txs, reports) VALUES (1, 'iestade-a', 'ab', 10, 'old.xml', "
            f"'{day} 10:00:00', '{day} 10:00:00', 'OLD-1', 'OLD-1', 'pain.001.001.03', "
            "'ACSC', 1, 1)"
        )
        run(
            "INSERT INTO gw_payments (file_id, seq, pmt_seq, pmt_inf_id, msg_id, "
            "batch_booking, end_to_end_id, debtor_iban, creditor_iban, amount_minor, "
            "currency, remittance, due_date, kind, status, acct_svcr_ref, transfer_ref, "
            f"report_no) VALUES (1, 0, 0, 'P1', 'OLD-1', true, 'E-1', '{A_MAIN}', "
            f"'{B_MAIN}', 500, 'EUR', 'Rēķins 1\nLīgums 2', '{day}', 'internal', 'ACSC', "
            "'EK000000000100000000', 'EK000000000100000000', 1)"
        )
    return engine


def test_a_database_of_the_previous_release_is_upgraded_with_its_data(
    tmp_path: Path, database_url: str
) -> None:
    """Upgrading keeps every posting, balance and payment: a transfer becomes a header of
    its postings (its account, amount and currency columns go), the payment keeps its
    remittance (its lines apart as they were), the new columns start empty, and what the
    large-payment-day gate reads is worked out from the payments; the result is the
    declared schema."""
    engine = _previous_release(database_url)
    try:
        with structlog.testing.capture_logs() as logged:
            upgrade_database(engine)
        # In the journal: which schema, from and to (an operator had no word of it).
        assert [
            (e["schema"], e["from_revision"], e["to_revision"])
            for e in logged
            if e["event"] == "db.migrated"
        ] == [
            ("ledger", "0001", ledger_migrations.HEAD),
            ("gateway", "0004", gateway_migrations.HEAD),
        ]
        assert _differences(engine, schema.metadata, "ledger_") == []
        assert _differences(engine, db.metadata, "gw_") == []
        with engine.connect() as conn:
            legs = conn.execute(
                sa.select(schema.postings.c.account_id, schema.postings.c.amount_minor)
                .where(schema.postings.c.transfer_id == 1)
                .order_by(schema.postings.c.id)
            ).all()
            payment = conn.execute(
                sa.select(db.payments.c.remittance, db.payments.c.remittance_structured)
            ).one()
            file_row = conn.execute(sa.select(db.files.c.msg_created_at, db.files.c.ctrl_sum)).one()
            day = conn.execute(sa.select(db.file_days)).one()
            announcements.check_days(conn)
            debited = conn.execute(sa.select(schema.account_days)).one()
        assert tuple(debited) == (1, TODAY, 500)  # what daily limits read, from the postings
        assert [tuple(r) for r in legs] == [(1, -500), (2, 500)]
        # What the large-payment-day gate reads of the booked file, worked out on upgrade.
        assert (day.file_id, day.due_date, day.client_id) == (1, TODAY, "iestade-a")
        assert (day.executed_minor, day.open_minor, day.held) == (500, 500, 0)
        # Two Ustrd lines, joined by a line break then, by U+001E now (0013).
        assert tuple(payment) == ("Rēķins 1\x1eLīgums 2", None)
        assert tuple(file_row) == (None, None)
    finally:
        engine.dispose()


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


def test_payments_booked_before_the_upgrade_still_reach_the_statements(
    tmp_path: Path, database_url: str
) -> None:
    """A batch booked through the pipeline is found again for statements after the
    database is upgraded in place (the reference names the file)."""
    from gateway.outbound import entries as reported

    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        batch = Batch(msg_id="REF-1").tx("SAL-1", "10.00").tx("SAL-2", "20.00").build()
        assert inst.submit(batch, name="ref.xml").statuses() == {"SAL-1": "ACSC", "SAL-2": "ACSC"}
        with inst.env.engine.connect() as conn:
            account_id = conn.execute(
                sa.text("SELECT id FROM ledger_accounts WHERE iban = :iban"), {"iban": A_MAIN}
            ).scalar_one()
            entries = reported.entries(conn, account_id, day=TODAY)
            # a batch's payments are read as they are gone through: the connection open
            [entry] = [e for e in entries if any(d.end_to_end_id == "SAL-1" for d in e.details)]
            assert sorted(d.end_to_end_id for d in entry.details) == ["SAL-1", "SAL-2"]
    finally:
        inst.close()


def test_the_rows_postings_and_payments_name_are_kept_and_a_missing_one_is_found(
    tmp_path: Path, database_url: str
) -> None:
    """Postings name their account and transfer, payments their file, without foreign
    keys checked per row (ledger 0004, gateway 0011). Instead those rows can never be
    deleted — on both databases a trigger refuses it — and the audit finds a row that
    names one that is missing."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        batch = Batch(msg_id="KEEP-1").tx("K-1", "10.00").build()
        assert inst.submit(batch, name="keep.xml").statuses() == {"K-1": "ACSC"}
        engine = inst.env.engine
        for table in ("ledger_accounts", "ledger_transfers", "gw_files"):
            with (
                pytest.raises(sa.exc.DatabaseError, match="rows are never deleted"),
                engine.begin() as conn,
            ):
                conn.exec_driver_sql(f"DELETE FROM {table}")
        if engine.dialect.name == "postgresql":
            with (
                pytest.raises(sa.exc.DatabaseError, match="rows are never deleted"),
                engine.begin() as conn,
            ):
                conn.exec_driver_sql("TRUNCATE ledger_accounts CASCADE")
        inst.env.ledger.check_invariants()
        with engine.connect() as conn:
            db.check_references(conn)
        p = schema.postings.c
        for column in (p.account_id, p.transfer_id):
            with engine.connect() as conn:  # rolled back: the installation stays whole
                conn.execute(sa.update(schema.postings).values({column: 999_999}))
                with pytest.raises(AssertionError, match="names an account or transfer"):
                    audit.check_references(conn)
        with engine.connect() as conn:
            conn.execute(sa.update(db.payments).values(file_id=999_999))
            with pytest.raises(AssertionError, match="names a file that is missing"):
                db.check_references(conn)
    finally:
        inst.close()


def test_two_first_starts_at_once_migrate_one_after_the_other(database_url: str) -> None:
    """Two processes migrating a new database at the same moment (a daemon and a command,
    two nodes): on PostgreSQL one failed with a UniqueViolation traceback on the other's
    version table, on SQLite with "database is locked". One waits for the other now."""
    import subprocess
    import sys

    code = (
        "import sys; from ledger.engine import make_engine; "
        "from gateway.db_schema import upgrade_database; "
        "engine = make_engine(sys.argv[1]); upgrade_database(engine); engine.dispose()"
    )
    for _ in range(3):
        runs = [
            subprocess.Popen([sys.executable, "-c", code, database_url], stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err.decode()[-2000:]
        engine = make_engine(database_url)
        try:
            for table, head in (
                (ledger_migrations.VERSION_TABLE, ledger_migrations.HEAD),
                (gateway_migrations.VERSION_TABLE, gateway_migrations.HEAD),
            ):
                assert ledger_migrations.at_revision(engine, table, head)
            with engine.begin() as conn:  # a new database again for the next round
                if conn.dialect.name == "sqlite":
                    for name in sa.inspect(conn).get_table_names():
                        conn.exec_driver_sql(f'DROP TABLE "{name}"')
                else:  # the test's own schema, with the functions of its triggers
                    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                    conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        finally:
            engine.dispose()


def test_reports_written_before_0016_are_numbered_so_a_repeat_gets_the_final_one(
    tmp_path: Path, database_url: str
) -> None:
    """Migration 0016 numbers the further reports already written: a batch's follow-up
    (not a repeat's copy) — so that after the upgrade the same bytes again still get the
    follow-up with its MsgId after the first report (SPEC §6, §8), not the first alone
    with its stale PDNG."""
    from alembic import command as alembic_command

    from tests.pipeline_fixtures import RIGA

    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
        data = Batch(msg_id="LATER", execution_date=tomorrow).tx("L-1", "3.00", B_MAIN).build()
        assert inst.submit(data, name="later.xml").statuses() == {"L-1": "PDNG"}
        inst.clock.set(dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(9), RIGA))
        inst.run()
        [follow_up] = inst.new_answers()
        inst.drop(data, "again.xml")
        inst.run()
        assert [a.msg_id for a in inst.new_answers()][-1] == follow_up.msg_id
        engine = inst.env.engine
        assert gateway_migrations.__file__ is not None
        config = ledger_migrations.alembic_config(
            engine, Path(gateway_migrations.__file__).parent, gateway_migrations.VERSION_TABLE
        )
        alembic_command.downgrade(config, "0015")  # as the release before wrote them
        gateway_migrations.run_upgrade(engine)
        with engine.connect() as conn:
            numbered = conn.execute(
                sa.select(db.outbox.c.msg_id, db.outbox.c.report_no)
                .where(db.outbox.c.report_no.is_not(None))
            ).all()  # fmt: skip
        assert [tuple(r) for r in numbered] == [(follow_up.msg_id, 2)]
        inst.drop(data, "third.xml")
        inst.run()
        assert [a.msg_id for a in inst.new_answers()][-1] == follow_up.msg_id
    finally:
        inst.close()


def test_day_debits_kept_past_18_digits_are_brought_down_to_them(database_url: str) -> None:
    """Ledger 0005: a day's debits are kept up to 18 digits (past them every daily limit is
    exceeded alike); a row written before past them (fundings then allowed it) is brought
    down, so that adding a day's next debits to it stays within the column's 64 bits."""
    engine = make_engine(database_url)
    try:
        assert ledger_migrations.__file__ is not None
        config = ledger_migrations.alembic_config(
            engine, Path(ledger_migrations.__file__).parent, ledger_migrations.VERSION_TABLE
        )
        command.upgrade(config, "0004")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO ledger_accounts (id, iban, currency, owner, kind, status, "
                f"overdraft_minor, balance_minor) VALUES (1, '{A_MAIN}', 'EUR', 'iestade-a', "
                "'client', 'open', 0, 0)"
            )
            conn.execute(sa.insert(schema.account_days), [
                {"account_id": 1, "booking_date": TODAY, "debited_minor": 9 * 10**18},
                {"account_id": 1, "booking_date": TODAY + dt.timedelta(days=1),
                 "debited_minor": 5},
            ])  # fmt: skip
        command.upgrade(config, "0005")
        with engine.connect() as conn:
            kept = sorted(conn.execute(sa.select(schema.account_days.c.debited_minor)).scalars())
        assert kept == [5, 10**18]
    finally:
        engine.dispose()
