"""PostgreSQL's statistics of the tables the gateway writes most, kept current by the
gateway when the server does not keep them (its autovacuum is off).

A plan is as good as the statistics it is made with. Without any, PostgreSQL guesses
how selective a condition is, and AM05's look-up of a small file's fingerprints
(`record._RECENT_AMONG`) went through the debtor's index instead of the fingerprint's,
reading the whole window, so that a file cost more with every payment of the day
before it (`make bench`, small files and busy day on PostgreSQL). With autovacuum on (PostgreSQL's
default, and what production runs) the server analyzes a table once enough of it has
changed, and the gateway leaves it to it. With autovacuum off, the process that wrote
the payments does the same by the same rule of thumb (`rows_min` plus `share` of what
the tables held at the last analysis, counting the payments it wrote). It analyzes
what a file's reads ask by: the columns of `gw_payments` that its look-ups name, the
files and their days (`ANALYZE`), with a small sample (`statistics_target`: a tenth
of PostgreSQL's default), which is all that choosing an index takes; `ANALYZE` takes
no lock that blocks a writer.

SQLite needs none of this: its planner takes the fingerprint's index without statistics.
"""

from __future__ import annotations

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

log = structlog.get_logger("gateway.planner_stats")

ANALYZE = (
    "ANALYZE gw_payments (fingerprint, status, due_date, debtor_iban, file_id), "
    "gw_files, gw_file_days"
)
statistics_target = 10  # PostgreSQL's default_statistics_target is 100
rows_min = 1_000  # payments written before the first analysis
share = 0.1  # … and this share of the payments there were at the last analysis


class PlannerStats:
    """Counts the payments one process writes and runs `ANALYZE` when they call for it
    (PostgreSQL with autovacuum off; otherwise it does nothing)."""

    def __init__(self, engine: Engine, *, autovacuum: bool | None = None) -> None:
        """`autovacuum`: whether the server analyzes by itself (None: ask it, when the
        first analysis would be due, so that nothing is asked of a database at start)."""
        self.written = 0  # payments written since the last analysis
        self.analyzed = 0  # payments written up to it (by this process)
        self.engine = engine if engine.dialect.name == "postgresql" else None
        self.autovacuum = autovacuum

    def wrote(self, payments: int) -> None:
        """`payments` were committed; analyze if they make the statistics stale."""
        if self.engine is None:
            return
        self.written += payments
        if self.written < rows_min + share * self.analyzed:
            return
        try:
            if self.autovacuum is None:
                self.autovacuum = _autovacuum_on(self.engine)
            if self.autovacuum:
                self.engine = None  # the server keeps them
                return
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {statistics_target}")
                conn.exec_driver_sql(ANALYZE)
        except SQLAlchemyError as exc:  # the payments are committed; tried again later
            log.warning("planner.analyze_failed", error=str(exc))
        else:
            log.info("planner.analyzed", payments=self.analyzed + self.written)
        self.analyzed += self.written
        self.written = 0


def _autovacuum_on(engine: Engine) -> bool:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW autovacuum").scalar_one()) == "on"
