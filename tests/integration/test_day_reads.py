"""What a file reads of its client's day is found by index, not by reading the day
(ARCHITECTURE, "A file costs by its own size"). AM05's look-up of a small file's
payments asks by fingerprint alone:
- on SQLite (no statistics) the fingerprint's index is then the only way in;
- on PostgreSQL each look-up is planned with its own values: it is never prepared, so
  the server cannot keep a generic plan made while the table was nearly empty (which
  read the account's whole window through the debtor's index as the day filled up)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from gateway import db, planner_stats, record, samples
from tests.pipeline_fixtures import A_MAIN, TODAY, Installation

PREPARED = text("SELECT statement FROM pg_prepared_statements")
HISTOGRAM_BOUNDS = text(
    "SELECT attname, coalesce(array_length(histogram_bounds, 1), 0) FROM pg_stats "
    "WHERE tablename = 'gw_payments'"
)


def _booked_run(inst: Installation, files: int = 1) -> list[dict[str, Any]]:
    """A run of 3,000 payments from one account booked; the look-up's values for `files`
    later files of 20 payments each, their fingerprints those of the run's."""
    run = samples.payroll(A_MAIN, 3_000, amount_minor=1_000, execution_date=TODAY)
    assert inst.submit(samples.to_bytes(run)).group_status == "ACSC"
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        prints = [r[0] for r in conn.execute(select(p.fingerprint).limit(20 * files))]
    since = TODAY - dt.timedelta(days=7)
    return [
        {"prints": prints[n : n + 20], "since": since, "file_id": 0}
        for n in range(0, 20 * files, 20)
    ]


def _plan(conn: Connection, statement: Any, values: dict[str, Any]) -> str:
    sql = str(
        statement.params(**values).compile(conn.engine, compile_kwargs={"literal_binds": True})
    )
    return " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_on_sqlite_the_look_up_goes_through_the_fingerprint_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    inst = Installation.create(tmp_path / "gw", database_url=url)
    try:
        (values,) = _booked_run(inst)
        with inst.env.engine.connect() as conn:
            plan = _plan(conn, record._RECENT_AMONG, values)
            found = conn.execute(record._RECENT_AMONG, values).scalars().all()
        assert "ix_gw_payments_fingerprint" in plan, plan
        assert "ix_gw_payments_debtor_status" not in plan, plan
        assert sorted(found) == sorted(values["prints"])
    finally:
        inst.close()


def test_on_postgresql_the_look_up_is_never_prepared(tmp_path: Path, pg_url: str) -> None:
    """psycopg prepares a statement on its sixth run with the same text: ten files' look-ups
    with their fingerprints as parameters are prepared, the look-ups as the gateway runs
    them are not (so this test can fail)."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        files = _booked_run(inst, files=10)
        p = db.payments.c
        as_parameters = select(p.fingerprint.label("with_parameters")).where(
            p.fingerprint.in_(bindparam("prints", expanding=True)), *record._RECENT
        )
        with inst.env.engine.connect() as conn:
            for values in files:
                found = conn.execute(record._RECENT_AMONG, values).scalars().all()
                assert sorted(found) == sorted(values["prints"])
                conn.execute(as_parameters, values).all()
            prepared = [str(s) for s in conn.execute(PREPARED).scalars()]
        mentioning = [s for s in prepared if "gw_payments.fingerprint IN" in s]
        assert len(mentioning) == 1, prepared  # the one with parameters
        assert all(str(v["prints"][0]) not in mentioning[0] for v in files), mentioning
    finally:
        inst.close()


def test_on_postgresql_analyzed_the_look_up_goes_through_the_fingerprint_index(
    tmp_path: Path, pg_url: str
) -> None:
    """Once the tables are analyzed (`planner_stats`: by the gateway when the server's
    autovacuum is off, by the server when it is on), the look-up after a 3,000-payment
    run reads the fingerprint's index, not the account's window through the debtor's."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        (values,) = _booked_run(inst)
        planner_stats.PlannerStats(inst.env.engine, autovacuum=False).wrote(3_000)
        with inst.env.engine.connect() as conn:
            sql = str(
                record._RECENT_AMONG.params(**values).compile(
                    conn.engine, compile_kwargs={"literal_binds": True}
                )
            )
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
            found = conn.execute(record._RECENT_AMONG, values).scalars().all()
            bounds = {str(k): int(v) for k, v in conn.execute(HISTOGRAM_BOUNDS)}
        assert "ix_gw_payments_fingerprint" in plan, plan
        assert "ix_gw_payments_debtor_status" not in plan, plan
        assert sorted(found) == sorted(values["prints"])
        # What it analyzed: the columns the look-ups name, with a small sample.
        assert set(bounds) == {"fingerprint", "status", "due_date", "debtor_iban", "file_id"}
        assert bounds["fingerprint"] <= planner_stats.statistics_target + 1
    finally:
        inst.close()
