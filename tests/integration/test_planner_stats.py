"""The gateway analyzes the tables it writes most when the server does not (PostgreSQL
with autovacuum off, `gateway.planner_stats`): after `rows_min` payments, then after
`rows_min` plus a tenth of what it had written at the last analysis; never on SQLite or
when the server's autovacuum is on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from gateway.planner_stats import PlannerStats, rows_min
from tests.pipeline_fixtures import Installation

# The test's own table (its schema is first on the search path): other tests running at the
# same time have theirs, in their schemas.
RELTUPLES = text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('gw_payments')")


def _analyses(logs: list[dict[str, object]]) -> int:
    return sum(1 for entry in logs if entry["event"] == "planner.analyzed")


def test_analyzes_after_enough_payments_by_autovacuums_rule(tmp_path: Path, pg_url: str) -> None:
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        engine = inst.env.engine
        with engine.connect() as conn:
            assert conn.execute(RELTUPLES).scalar_one() == -1  # never analyzed
        stats = PlannerStats(engine, autovacuum=False)
        with capture_logs() as logs:
            stats.wrote(rows_min - 1)
            assert _analyses(logs) == 0
            with engine.connect() as conn:
                assert conn.execute(RELTUPLES).scalar_one() == -1
            stats.wrote(1)
            assert _analyses(logs) == 1
            with engine.connect() as conn:
                assert conn.execute(RELTUPLES).scalar_one() >= 0  # analyzed (empty here)
            stats.wrote(rows_min + rows_min // 10 - 1)  # a tenth of the 1,000 more
            assert _analyses(logs) == 1
            stats.wrote(1)
            assert _analyses(logs) == 2
    finally:
        inst.close()


def test_leaves_it_to_the_server_or_to_sqlite(tmp_path: Path, pg_url: str) -> None:
    """With autovacuum on the server analyzes; SQLite plans without statistics."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    sqlite = create_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        with capture_logs() as logs:
            PlannerStats(inst.env.engine, autovacuum=True).wrote(10 * rows_min)
            PlannerStats(sqlite).wrote(10 * rows_min)
        assert _analyses(logs) == 0
        with inst.env.engine.connect() as conn:
            assert conn.execute(RELTUPLES).scalar_one() == -1
    finally:
        sqlite.dispose()
        inst.close()


def test_the_pass_that_wrote_the_payments_analyzes(tmp_path: Path, pg_url: str) -> None:
    """A file of `rows_min` payments through the pipeline: analyzed by the gateway if the
    server's autovacuum is off (as on this project's CI server), not if it is on."""
    from gateway import samples
    from tests.pipeline_fixtures import A_MAIN, TODAY

    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        with inst.env.engine.connect() as conn:
            autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar_one() == "on"
        run = samples.payroll(A_MAIN, rows_min, amount_minor=100, execution_date=TODAY)
        with capture_logs() as logs:
            assert inst.submit(samples.to_bytes(run)).group_status == "ACSC"
        assert _analyses(logs) == (0 if autovacuum else 1)
    finally:
        inst.close()


def test_a_database_away_costs_a_warning_not_the_pass(pg_url: str) -> None:
    """Nothing is asked of the database until an analysis is due; then a failure is
    logged and the payments, committed already, are not the worse for it."""
    from sqlalchemy.engine import make_url

    away = create_engine(make_url(pg_url).set(database="ekase_no_such_database"))
    try:
        stats = PlannerStats(away)  # asks nothing yet
        with capture_logs() as logs:
            stats.wrote(rows_min)
        assert [e["event"] for e in logs] == ["planner.analyze_failed"]
    finally:
        away.dispose()
